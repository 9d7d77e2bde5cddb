//! Keys to commands, from TOML (yazi style: each binding has `on`, `run`, `desc`).
//! Every key is here: the commands' sections (`global`, `normal`, `edit`), and
//! the dialogs' (`dialog`, as yazi's `[confirm]`/`[help]`) and prompts'
//! (`prompt`, as yazi's `[input]`). The presets in `keymaps/` are built in; a
//! user's `keymap.toml` replaces the keys of the bindings it names and adds the
//! ones it does not. The help overlay, the command palette, the dialogs' footers
//! and the status line's hints are generated from the loaded keymap.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::toml_file::{self, FileError};

mod key;
pub use key::Key;

pub const PRESETS: [(&str, &str); 2] = [
    ("default", include_str!("../../keymaps/default.toml")),
    ("vim", include_str!("../../keymaps/vim.toml")),
];

/// The user's own keymap in their config dir, and the folder of more.
pub const USER_FILE: &str = "keymap.toml";
pub const USER_FOLDER: &str = "keymaps";

/// What a key can ask the console to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    TabNetwork,
    TabFlows,
    TabLvs,
    TabSetup,
    NextTab,
    PrevTab,
    Edit,
    Append,
    OpenLine,
    StopEditing,
    Help,
    Palette,
    Quit,
    Apply,
    Save,
    Confirm,
    Reload,
    ShowDiff,
    DiffEdited,
    RestoreVersion,
    Export,
    Import,
    NextTheme,
    NextKeymap,
    SetConfirmTimeout,
    SyncPeer,
    ToggleRates,
    Undo,
    Redo,
    NextProblem,
    PrevProblem,
    Search,
    SearchNext,
    SearchPrev,
    MoveUp,
    MoveDown,
    MoveLeft,
    MoveRight,
    WordForward,
    WordBack,
    LineStart,
    LineEnd,
    BufferTop,
    BufferBottom,
    PageUp,
    PageDown,
    DeleteChar,
    // The LB Layer4 live pane (its own section, `pane`).
    /// Give the keys to the live pane, or take them back.
    FocusPane,
    /// Clear the pane's filter, or leave the pane when there is none.
    LeavePane,
    /// Mark or unmark the selected server.
    ToggleMark,
    Drain,
    Disable,
    Enable,
    SetWeight,
    /// Filter the pane's servers (`!text` inverts).
    Filter,
    /// Sort the pane by the next key (connections, rate, name, health).
    NextSort,
    ToggleEvents,
}

/// What a key does in a dialog that asks or shows: the plan, a diff, a question,
/// help, a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogCommand {
    /// Do what the dialog asks.
    Yes,
    /// Do not.
    No,
    /// Close the dialog.
    Cancel,
    /// Reload the saved files (when a change was refused as stale).
    Reload,
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
}

/// What a key does in a one-line prompt or the command palette; keys not
/// bound here are text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptCommand {
    /// Take the text (the palette: run the selected command).
    Accept,
    Cancel,
    /// Throw the text away, for a fresh start.
    Clear,
    /// Delete the character before the cursor.
    DeleteBack,
    /// The palette's next entry.
    Next,
    /// The palette's previous entry.
    Prev,
}

impl Command {
    /// The name a keymap's `run` gives it: `next_problem`.
    pub fn name(self) -> String {
        snake_case(self)
    }
}

/// What a binding runs: a command, or a dialog's or a prompt's.
pub trait Run: Copy + PartialEq + fmt::Debug {
    /// The name a keymap's `run` gives it: `next_problem`, `scroll_down`.
    fn name(self) -> String {
        snake_case(self)
    }
}

impl Run for Command {}
impl Run for DialogCommand {}
impl Run for PromptCommand {}

fn snake_case(run: impl fmt::Debug) -> String {
    let mut name = String::new();
    for c in format!("{run:?}").chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Everywhere.
    Global,
    /// Not typing: single keys are commands.
    Normal,
    /// Typing into a file: unbound keys are text.
    Edit,
    /// The LB Layer4 live pane has the keys.
    Pane,
}

impl Section {
    /// The section of the keys for typing (`editing`) or not.
    fn typing(editing: bool) -> Self {
        if editing { Self::Edit } else { Self::Normal }
    }

    pub const ALL: [Self; 4] = [Self::Global, Self::Normal, Self::Edit, Self::Pane];

    pub fn title(self) -> &'static str {
        match self {
            Self::Global => "Everywhere",
            Self::Normal => "Not typing",
            Self::Edit => "Typing",
            Self::Pane => "In the LB Layer4 live pane",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding<C = Command> {
    pub on: Vec<Key>,
    pub run: C,
    pub desc: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keymap {
    pub global: Vec<Binding>,
    pub normal: Vec<Binding>,
    pub edit: Vec<Binding>,
    /// While the LB Layer4 live pane has the keys.
    pub pane: Vec<Binding>,
    /// In a dialog that asks or shows (yazi's `[confirm]` and `[help]`).
    pub dialog: Vec<Binding<DialogCommand>>,
    /// In a one-line prompt and the palette (yazi's `[input]`).
    pub prompt: Vec<Binding<PromptCommand>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    global: Vec<Binding>,
    #[serde(default)]
    normal: Vec<Binding>,
    #[serde(default)]
    edit: Vec<Binding>,
    #[serde(default)]
    pane: Vec<Binding>,
    #[serde(default)]
    dialog: Vec<Binding<DialogCommand>>,
    #[serde(default)]
    prompt: Vec<Binding<PromptCommand>>,
}

/// A user's file: like a preset, but `desc` may be left out, and it may name
/// the preset it starts from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserKeymapFile {
    preset: Option<String>,
    #[serde(default)]
    global: Vec<UserBinding>,
    #[serde(default)]
    normal: Vec<UserBinding>,
    #[serde(default)]
    edit: Vec<UserBinding>,
    #[serde(default)]
    pane: Vec<UserBinding>,
    #[serde(default)]
    dialog: Vec<UserBinding<DialogCommand>>,
    #[serde(default)]
    prompt: Vec<UserBinding<PromptCommand>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBinding<C = Command> {
    on: Vec<Key>,
    run: C,
    desc: Option<String>,
}

impl Keymap {
    pub fn preset(name: &str) -> Option<Self> {
        let (label, text) = PRESETS.iter().find(|(preset, _)| *preset == name)?;
        let file: KeymapFile = toml_file::parse(&format!("keymaps/{label}.toml"), text)
            .expect("the built-in keymaps parse (tested)");
        Some(Self {
            global: file.global,
            normal: file.normal,
            edit: file.edit,
            pane: file.pane,
            dialog: file.dialog,
            prompt: file.prompt,
        })
    }

    /// The preset `name`, or the user's file `name` in `user_dir` over its
    /// preset (`default` unless it names one).
    pub fn load(user_dir: Option<&Path>, name: &str) -> Result<Self, FileError> {
        if let Some(preset) = Self::preset(name) {
            return Ok(preset);
        }
        let (path, text) =
            toml_file::read_chosen_file(user_dir, name, &PRESETS.map(|(name, _)| name))?;
        let label = path.display().to_string();
        let user: UserKeymapFile = toml_file::parse(&label, &text)?;
        let preset = user.preset.as_deref().unwrap_or("default");
        let mut keymap = Self::preset(preset).ok_or_else(|| {
            FileError::at_text(
                &label,
                &text,
                preset,
                format!("unknown preset `{preset}` (default or vim)"),
            )
        })?;
        for (section, bindings) in [
            (Section::Global, user.global),
            (Section::Normal, user.normal),
            (Section::Edit, user.edit),
            (Section::Pane, user.pane),
        ] {
            for binding in bindings {
                set(keymap.section_mut(section), binding);
            }
        }
        for binding in user.dialog {
            set(&mut keymap.dialog, binding);
        }
        for binding in user.prompt {
            set(&mut keymap.prompt, binding);
        }
        Ok(keymap)
    }

    pub fn section(&self, section: Section) -> &[Binding] {
        match section {
            Section::Global => &self.global,
            Section::Normal => &self.normal,
            Section::Edit => &self.edit,
            Section::Pane => &self.pane,
        }
    }

    fn section_mut(&mut self, section: Section) -> &mut Vec<Binding> {
        match section {
            Section::Global => &mut self.global,
            Section::Normal => &mut self.normal,
            Section::Edit => &mut self.edit,
            Section::Pane => &mut self.pane,
        }
    }

    /// The command `key` runs while typing (`editing`) or not; global bindings
    /// come first.
    pub fn command(&self, key: Key, editing: bool) -> Option<Command> {
        [Section::Global, Section::typing(editing)]
            .into_iter()
            .find_map(|section| find(self.section(section), key))
    }

    /// The command `key` runs while the live pane has the keys; global
    /// bindings come first.
    pub fn pane_command(&self, key: Key) -> Option<Command> {
        [Section::Global, Section::Pane]
            .into_iter()
            .find_map(|section| find(self.section(section), key))
    }

    /// The first key that runs `command` in the live pane, and its desc.
    pub fn pane_hint(&self, command: Command) -> Option<(String, &str)> {
        [Section::Pane, Section::Global]
            .into_iter()
            .find_map(|section| hint(self.section(section), command))
    }

    /// The keys that run `command` outside typing, for hints: `"a"`, `"f5"`.
    pub fn keys_for(&self, command: Command) -> Option<String> {
        [Section::Normal, Section::Global]
            .into_iter()
            .find_map(|section| hint(self.section(section), command))
            .map(|(key, _)| key)
    }

    /// The first key that runs `command` while typing (`editing`) or not, and
    /// its desc: a status line's hint.
    pub fn hint(&self, command: Command, editing: bool) -> Option<(String, &str)> {
        [Section::typing(editing), Section::Global]
            .into_iter()
            .find_map(|section| hint(self.section(section), command))
    }

    /// What `key` does in a dialog that asks or shows.
    pub fn dialog_command(&self, key: Key) -> Option<DialogCommand> {
        find(&self.dialog, key)
    }

    /// What `key` does in a prompt or the palette; `None` is text.
    pub fn prompt_command(&self, key: Key) -> Option<PromptCommand> {
        find(&self.prompt, key)
    }

    /// The first key of a dialog's command and its desc, for a footer.
    pub fn dialog_hint(&self, command: DialogCommand) -> Option<(String, &str)> {
        hint(&self.dialog, command)
    }

    /// The first key of a prompt's command and its desc, for a footer.
    pub fn prompt_hint(&self, command: PromptCommand) -> Option<(String, &str)> {
        hint(&self.prompt, command)
    }

    /// Every binding as (keys, desc) under the title of its section, for the
    /// help: the commands' sections, then the dialogs' and the prompts'.
    pub fn help(&self) -> Vec<(&'static str, Vec<(String, &str)>)> {
        fn rows<C>(bindings: &[Binding<C>]) -> Vec<(String, &str)> {
            bindings
                .iter()
                .map(|binding| (keys_text(&binding.on), binding.desc.as_str()))
                .collect()
        }
        let mut sections: Vec<_> = Section::ALL
            .into_iter()
            .map(|section| (section.title(), rows(self.section(section))))
            .collect();
        sections.push(("In dialogs", rows(&self.dialog)));
        sections.push(("In prompts and the palette", rows(&self.prompt)));
        sections
    }

    /// Every command with its description and keys, once each, for the palette.
    pub fn commands(&self) -> Vec<(Command, &str, String)> {
        let mut commands: Vec<(Command, &str, String)> = Vec::new();
        for section in Section::ALL {
            for binding in self.section(section) {
                let keys = keys_text(&binding.on);
                match commands.iter_mut().find(|(c, _, _)| *c == binding.run) {
                    Some((_, _, existing)) if !keys.is_empty() => {
                        existing.push_str(if existing.is_empty() { "" } else { ", " });
                        existing.push_str(&keys);
                    }
                    Some(_) => {}
                    None => commands.push((binding.run, &binding.desc, keys)),
                }
            }
        }
        commands
    }
}

/// Puts a user's binding into a section of the preset: it replaces the keys
/// of the binding with the same `run` (and its desc, if given), or is added.
fn set<C: Run>(bindings: &mut Vec<Binding<C>>, user: UserBinding<C>) {
    // A key the user binds leaves every other binding of its section.
    for binding in bindings.iter_mut() {
        binding.on.retain(|key| !user.on.contains(key));
    }
    match bindings.iter_mut().find(|b| b.run == user.run) {
        Some(binding) => {
            binding.on = user.on;
            if let Some(desc) = user.desc {
                binding.desc = desc;
            }
        }
        None => {
            let desc = user.desc.unwrap_or_else(|| user.run.name());
            bindings.push(Binding {
                on: user.on,
                run: user.run,
                desc,
            });
        }
    }
}

/// The command `key` runs in `bindings`, the first that has it.
fn find<C: Run>(bindings: &[Binding<C>], key: Key) -> Option<C> {
    bindings
        .iter()
        .find(|binding| binding.on.contains(&key))
        .map(|binding| binding.run)
}

/// A hint for `run`: its first key and its desc; none when it has no key.
fn hint<C: Run>(bindings: &[Binding<C>], run: C) -> Option<(String, &str)> {
    bindings
        .iter()
        .find(|binding| binding.run == run && !binding.on.is_empty())
        .map(|binding| (binding.on[0].to_string(), binding.desc.as_str()))
}

pub fn keys_text(keys: &[Key]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;

    fn key(text: &str) -> Key {
        text.parse().unwrap()
    }

    fn user_keymap(text: &str) -> Result<Keymap, FileError> {
        let dir = std::env::temp_dir().join(format!(
            "lbconsole-keymap-{}-{:x}",
            std::process::id(),
            text.len() * 31 + text.bytes().map(usize::from).sum::<usize>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keymap.toml"), text).unwrap();
        let keymap = Keymap::load(Some(&dir), USER_FILE);
        std::fs::remove_dir_all(&dir).unwrap();
        keymap.map_err(|mut e| {
            e.file = "keymap.toml".to_owned();
            e
        })
    }

    #[test]
    fn every_preset_parses_and_reaches_every_tab() {
        for (name, _) in PRESETS {
            let keymap = Keymap::preset(name).unwrap();
            for (k, tab) in [("f1", Command::TabNetwork), ("alt-4", Command::TabSetup)] {
                assert_eq!(keymap.command(key(k), true), Some(tab), "{name} {k}");
                assert_eq!(keymap.command(key(k), false), Some(tab), "{name} {k}");
            }
            assert_eq!(keymap.command(key("esc"), true), Some(Command::StopEditing));
            assert_eq!(keymap.command(key("?"), false), Some(Command::Help));
            assert_eq!(keymap.command(key("?"), true), None, "{name}: ? is text");
            assert_eq!(
                keymap.command(key("S"), false),
                Some(Command::SyncPeer),
                "{name}"
            );
            for editing in [false, true] {
                assert_eq!(
                    keymap.command(key("f8"), editing),
                    Some(Command::ToggleEvents),
                    "{name}: the events pane from anywhere"
                );
            }
        }
    }

    #[test]
    fn keys_read_and_print_the_same_way() {
        for text in [
            "ctrl-s", "alt-1", "f12", "?", "-", "ctrl--", "N", "backtab", "space",
        ] {
            assert_eq!(key(text).to_string(), text);
        }
        assert_eq!(key("shift-n"), key("N"));
        let event = KeyEvent::new(KeyCode::Char('N'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(event), key("N"));
        let event = KeyEvent::new(
            KeyCode::Char('S'),
            KeyModifiers::CONTROL | KeyModifiers::SHIFT,
        );
        assert_eq!(Key::from_event(event), key("ctrl-s"));
    }

    #[test]
    fn a_user_binding_replaces_the_keys_of_its_command_only() {
        let keymap = user_keymap("[[normal]]\non = [\"x\"]\nrun = \"apply\"\n").unwrap();
        assert_eq!(keymap.command(key("x"), false), Some(Command::Apply));
        assert_eq!(keymap.command(key("a"), false), None);
        assert_eq!(keymap.command(key("f5"), false), Some(Command::Apply));
        let apply = keymap
            .normal
            .iter()
            .find(|b| b.run == Command::Apply)
            .unwrap();
        assert_eq!(apply.desc, "Apply to the kernel (shows the plan first)");
        assert_eq!(keymap.command(key("s"), false), Some(Command::Save));
    }

    #[test]
    fn a_user_key_leaves_the_binding_it_had() {
        let keymap = user_keymap("[[normal]]\non = [\"a\"]\nrun = \"save\"\n").unwrap();
        assert_eq!(keymap.command(key("a"), false), Some(Command::Save));
        assert_eq!(keymap.keys_for(Command::Apply).as_deref(), Some("f5"));
    }

    #[test]
    fn a_user_file_can_start_from_vim() {
        let keymap = user_keymap("preset = \"vim\"\n").unwrap();
        assert_eq!(keymap, Keymap::preset("vim").unwrap());
        assert_eq!(keymap.command(key("j"), false), Some(Command::MoveDown));
    }

    #[test]
    fn every_preset_binds_every_dialog_and_prompt_key() {
        let dialog = [
            DialogCommand::Yes,
            DialogCommand::No,
            DialogCommand::Cancel,
            DialogCommand::Reload,
            DialogCommand::ScrollUp,
            DialogCommand::ScrollDown,
            DialogCommand::PageUp,
            DialogCommand::PageDown,
        ];
        let prompt = [
            PromptCommand::Accept,
            PromptCommand::Cancel,
            PromptCommand::Clear,
            PromptCommand::DeleteBack,
            PromptCommand::Next,
            PromptCommand::Prev,
        ];
        for (name, _) in PRESETS {
            let keymap = Keymap::preset(name).unwrap();
            for command in dialog {
                assert!(keymap.dialog_hint(command).is_some(), "{name} {command:?}");
            }
            for command in prompt {
                assert!(keymap.prompt_hint(command).is_some(), "{name} {command:?}");
            }
            for (k, command) in [
                ("y", DialogCommand::Yes),
                ("enter", DialogCommand::Yes),
                ("n", DialogCommand::No),
                ("esc", DialogCommand::Cancel),
                ("j", DialogCommand::ScrollDown),
                ("k", DialogCommand::ScrollUp),
            ] {
                assert_eq!(keymap.dialog_command(key(k)), Some(command), "{name} {k}");
            }
            assert_eq!(keymap.prompt_command(key("j")), None, "{name}: j is text");
            assert_eq!(
                keymap.prompt_command(key("enter")),
                Some(PromptCommand::Accept)
            );
        }
    }

    #[test]
    fn the_default_dialog_keys_are_the_ones_the_dialogs_always_had() {
        let keymap = Keymap::preset("default").unwrap();
        for (k, command) in [
            ("Y", DialogCommand::Yes),
            ("ctrl-c", DialogCommand::Cancel),
            ("r", DialogCommand::Reload),
            ("up", DialogCommand::ScrollUp),
            ("down", DialogCommand::ScrollDown),
            ("pageup", DialogCommand::PageUp),
            ("pagedown", DialogCommand::PageDown),
            ("space", DialogCommand::PageDown),
        ] {
            assert_eq!(keymap.dialog_command(key(k)), Some(command), "{k}");
        }
        for (k, command) in [
            ("esc", PromptCommand::Cancel),
            ("ctrl-c", PromptCommand::Cancel),
            ("ctrl-u", PromptCommand::Clear),
            ("backspace", PromptCommand::DeleteBack),
            ("tab", PromptCommand::Next),
            ("down", PromptCommand::Next),
            ("backtab", PromptCommand::Prev),
            ("up", PromptCommand::Prev),
        ] {
            assert_eq!(keymap.prompt_command(key(k)), Some(command), "{k}");
        }
    }

    #[test]
    fn a_user_can_rebind_the_dialog_and_prompt_keys() {
        let keymap = user_keymap(
            "[[dialog]]\non = [\"o\"]\nrun = \"yes\"\ndesc = \"oui\"\n\n\
             [[dialog]]\non = [\"q\"]\nrun = \"cancel\"\n\n\
             [[prompt]]\non = [\"ctrl-k\"]\nrun = \"clear\"\n",
        )
        .unwrap();
        assert_eq!(keymap.dialog_command(key("o")), Some(DialogCommand::Yes));
        assert_eq!(keymap.dialog_command(key("y")), None);
        assert_eq!(
            keymap.dialog_hint(DialogCommand::Yes),
            Some(("o".to_owned(), "oui"))
        );
        assert_eq!(keymap.dialog_command(key("q")), Some(DialogCommand::Cancel));
        assert_eq!(keymap.dialog_command(key("esc")), None);
        assert_eq!(
            keymap.dialog_hint(DialogCommand::Cancel),
            Some(("q".to_owned(), "close"))
        );
        assert_eq!(
            keymap.prompt_command(key("ctrl-k")),
            Some(PromptCommand::Clear)
        );
        assert_eq!(keymap.prompt_command(key("ctrl-u")), None);
        assert_eq!(keymap.dialog_command(key("n")), Some(DialogCommand::No));
    }

    #[test]
    fn the_help_lists_every_binding_of_every_section() {
        let keymap = Keymap::preset("vim").unwrap();
        let help = keymap.help();
        let titles: Vec<&str> = help.iter().map(|(title, _)| *title).collect();
        assert_eq!(
            titles,
            [
                "Everywhere",
                "Not typing",
                "Typing",
                "In the LB Layer4 live pane",
                "In dialogs",
                "In prompts and the palette"
            ]
        );
        let rows: usize = help.iter().map(|(_, rows)| rows.len()).sum();
        let bindings = keymap.global.len()
            + keymap.normal.len()
            + keymap.edit.len()
            + keymap.pane.len()
            + keymap.dialog.len()
            + keymap.prompt.len();
        assert_eq!(rows, bindings);
        assert!(
            help[4]
                .1
                .contains(&("k, up, ctrl-y".to_owned(), "scroll up"))
        );
    }

    #[test]
    fn bad_keymap_files_name_the_line() {
        let cases = [
            (
                "[[normal]]\non = [\"ctrl-shft-x\"]\nrun = \"save\"\n",
                "keymap.toml:2:6: unknown key `ctrl-shft-x` (a character, f1-f12,",
            ),
            (
                "[[normal]]\non = [\"x\"]\nrun = \"sav\"\n",
                "keymap.toml:3:7: unknown variant `sav`, expected one of",
            ),
            (
                "[[normal]]\non = [\"x\"]\nrun = \"save\"\nwhen = \"now\"\n",
                "keymap.toml:4:1: unknown field `when`, expected",
            ),
            (
                "[[insert]]\non = [\"x\"]\nrun = \"save\"\n",
                "keymap.toml:1:3: unknown field `insert`, expected",
            ),
            (
                "preset = \"emacs\"\n",
                "keymap.toml:1:11: unknown preset `emacs` (default or vim)",
            ),
            (
                "[[normal]]\non = \"x\"\nrun = \"save\"\n",
                "keymap.toml:2:6: ",
            ),
        ];
        for (text, expected) in cases {
            let error = user_keymap(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{error}\nexpected {expected}");
        }
    }
}
