//! The console's state, the actions that change it, and `update`: keys become
//! commands through the keymap, commands change the state, and whatever needs
//! the disk or the kernel leaves as an [`Effect`] whose answer comes back as an
//! [`Action`]. Nothing here waits or draws.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::{CursorMove, Input};

use super::Looks;
use super::editor::Editor;
use super::engine::{
    self, Applied, Diff, DiffBase, Facts, History, Live, Loaded, NewVersion, PlanPreview, Refusal,
    Request, SettingChange,
};
use super::keymap::{Command, Key, Keymap};
pub use super::overlay::{Outcome, Overlay, Prompt, Question};
use super::theme::Theme;
use crate::apply::TearDown;
use crate::config::{ConfigFile, Diagnostic, Severity};
use crate::plan::ipvs::ServiceKey;
use crate::store::{self, ConfigFiles, Saved, VersionMeta};

/// How long typing must pause before the buffers are validated.
pub const CHECK_DELAY: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Network,
    Flows,
    Lvs,
    Setup,
}

impl Tab {
    pub const ALL: [Self; 4] = [Self::Network, Self::Flows, Self::Lvs, Self::Setup];

    pub fn title(self) -> &'static str {
        match self {
            Self::Network => "Network",
            Self::Flows => "Flows",
            Self::Lvs => "LB Layer4",
            Self::Setup => "Setup",
        }
    }

    /// The file this tab edits; Setup edits none.
    pub fn file(self) -> Option<ConfigFile> {
        match self {
            Self::Network => Some(ConfigFile::Network),
            Self::Flows => Some(ConfigFile::Flows),
            Self::Lvs => Some(ConfigFile::Lvs),
            Self::Setup => None,
        }
    }

    fn of(file: ConfigFile) -> Self {
        match file {
            ConfigFile::Network => Self::Network,
            ConfigFile::Flows => Self::Flows,
            ConfigFile::Lvs => Self::Lvs,
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|&t| t == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Single keys are commands.
    Normal,
    /// Keys are text for the current file.
    Edit,
}

/// An engine request in flight, so that it is not sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    Planning,
    Applying,
    Saving,
    Reloading,
    Restoring,
    Importing,
    Exporting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// A keymap or theme in use (a preset's name or the user's file), and all
/// one can choose from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub choices: Vec<String>,
}

impl Choice {
    /// The choice after this one, going round.
    pub fn next(&self) -> String {
        let next = self
            .choices
            .iter()
            .position(|choice| *choice == self.name)
            .map_or(0, |at| (at + 1) % self.choices.len());
        self.choices
            .get(next)
            .cloned()
            .unwrap_or_else(|| self.name.clone())
    }
}

/// The settings and where they come from, for the Setup tab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub config_dir: String,
    pub state_dir: String,
    /// `lbconsole.toml` as last read or written.
    pub stored: store::Settings,
    pub theme: Choice,
    pub keymap: Choice,
    /// `NO_COLOR` or a serial terminal: themes lose their colours.
    pub monochrome: bool,
    /// What the sandbox provides, when the console runs in one.
    pub sandbox: Option<crate::sandbox::Notes>,
    /// Problems with the user's keymap or theme file, shown once at start.
    pub problems: Vec<String>,
}

#[derive(Debug)]
pub enum Action {
    Key(KeyEvent),
    Paste(String),
    Resize(u16, u16),
    /// Time passes: the moment to validate after typing pauses.
    Tick,
    /// Time to read the kernel again.
    RefreshLive,
    Run(Command),
    Checked {
        generation: u64,
        diagnostics: Vec<Diagnostic>,
        directors: BTreeMap<ServiceKey, String>,
    },
    Observed(Box<Live>),
    Facts(Box<Facts>),
    Planned(Result<PlanPreview, String>),
    Applied(Result<Applied, String>),
    Saved(Result<Saved, Refusal>),
    Reloaded(Box<Result<Loaded, String>>),
    Confirmed(Result<String, String>),
    History(Result<History, String>),
    Diffed(Result<Diff, String>),
    /// A restore or an import made a new saved version.
    Replaced(Box<Result<NewVersion, Refusal>>),
    /// The version exported and the file it went to.
    Exported(Result<(u64, PathBuf), String>),
    LooksChanged(Box<Result<Looks, String>>),
}

#[derive(Debug)]
pub enum Effect {
    /// Validate these buffers (off the UI task); answered by [`Action::Checked`].
    Check {
        generation: u64,
        files: ConfigFiles,
    },
    Engine(Request),
    Quit,
}

pub struct App {
    pub tab: Tab,
    pub mode: Mode,
    pub overlay: Option<Overlay>,
    editors: [Editor; 3],
    /// The diagnostics of the last validation, of all three files.
    pub diagnostics: Vec<Diagnostic>,
    pub directors: BTreeMap<ServiceKey, String>,
    /// Counts edits; a validation answers for one generation.
    generation: u64,
    checked_generation: Option<u64>,
    requested_generation: Option<u64>,
    last_edit: Option<Instant>,
    pub saved: ConfigFiles,
    /// The store's version of `saved`, which a restore or an import expects.
    pub saved_version: u64,
    pub running: Option<ConfigFiles>,
    /// The store's versions; `None` until read.
    pub history: Option<Result<History, String>>,
    /// The version selected in the history; the newest when `None`.
    selected_version: Option<u64>,
    /// The file last exported or imported, offered again.
    archive_path: Option<String>,
    /// Files whose buffer differs from the saved file, and applied files whose
    /// buffer differs from what runs; kept up to date as buffers change, so a
    /// frame never compares whole files.
    unsaved: Vec<ConfigFile>,
    unapplied: Vec<ConfigFile>,
    pub live: Option<Live>,
    observing: bool,
    pub facts: Option<Facts>,
    pub busy: Option<Busy>,
    /// When the guard restores what ran, unless Confirm comes first.
    pub confirm_deadline: Option<Instant>,
    /// Whole seconds left to confirm, as of the last tick (what the state line shows).
    pub confirm_left: Option<u64>,
    pub notice: Option<Notice>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub settings: Settings,
    /// The terminal's size, for the editor's view and page moves.
    pub size: (u16, u16),
    search: String,
}

impl App {
    pub fn new(loaded: Loaded, keymap: Keymap, theme: Theme, settings: Settings) -> Self {
        let mut app = Self {
            tab: Tab::Network,
            mode: Mode::Normal,
            overlay: None,
            editors: ConfigFile::ALL.map(|_| Editor::new("")),
            diagnostics: Vec::new(),
            directors: BTreeMap::new(),
            generation: 0,
            checked_generation: None,
            requested_generation: None,
            last_edit: None,
            saved: ConfigFiles::default(),
            saved_version: 0,
            running: None,
            history: None,
            selected_version: None,
            archive_path: None,
            unsaved: Vec::new(),
            unapplied: Vec::new(),
            live: None,
            observing: false,
            facts: None,
            busy: None,
            confirm_deadline: None,
            confirm_left: None,
            notice: None,
            keymap,
            theme,
            settings,
            size: (80, 24),
            search: String::new(),
        };
        app.load_buffers(loaded);
        app
    }

    /// What the console asks for when it starts: a first validation, the
    /// kernel's state, the machine's facts and the store's history.
    pub fn start(&mut self) -> Vec<Effect> {
        let mut effects = vec![
            self.check_now(),
            Effect::Engine(Request::Facts),
            Effect::Engine(Request::History),
        ];
        effects.extend(self.refresh_live());
        if !self.settings.problems.is_empty() {
            self.overlay = Some(Overlay::Message {
                title: "Settings not used".to_owned(),
                text: self.settings.problems.join("\n"),
                scroll: 0,
            });
        }
        effects
    }

    /// Puts the loaded files into the buffers, in place of any edits.
    fn load_buffers(&mut self, loaded: Loaded) {
        let text = |file| String::from_utf8_lossy(loaded.saved.get(file)).into_owned();
        self.editors = ConfigFile::ALL.map(|file| Editor::new(&text(file)));
        (self.saved, self.saved_version, self.running) =
            (loaded.saved, loaded.version, loaded.running);
        self.mode = Mode::Normal;
        self.last_edit = None;
        // Answers still on their way are about the old buffers.
        self.generation += 1;
        self.compare(&ConfigFile::ALL);
    }

    /// Validates the buffers as they are.
    fn check_now(&mut self) -> Effect {
        self.requested_generation = Some(self.generation);
        Effect::Check {
            generation: self.generation,
            files: self.buffers(),
        }
    }

    /// The version selected in the history, if there is one.
    pub fn selected(&self) -> Option<(usize, &VersionMeta)> {
        let Some(Ok(history)) = &self.history else {
            return None;
        };
        let at = self
            .selected_version
            .and_then(|number| history.versions.iter().position(|v| v.number == number))
            .unwrap_or(0);
        history.versions.get(at).map(|meta| (at, meta))
    }

    /// Moves the selection `by` versions: negative to newer ones.
    fn move_selection(&mut self, by: isize) {
        let Some((at, _)) = self.selected() else {
            return;
        };
        let Some(Ok(history)) = &self.history else {
            return;
        };
        let last = history.versions.len() as isize - 1;
        let to = (at as isize).saturating_add(by).clamp(0, last) as usize;
        self.selected_version = Some(history.versions[to].number);
    }

    pub fn editor(&self, file: ConfigFile) -> &Editor {
        &self.editors[file as usize]
    }

    fn current_editor(&mut self) -> Option<&mut Editor> {
        let file = self.tab.file()?;
        Some(&mut self.editors[file as usize])
    }

    /// The three buffers as files.
    pub fn buffers(&self) -> ConfigFiles {
        ConfigFiles {
            network: self.buffer(ConfigFile::Network),
            flows: self.buffer(ConfigFile::Flows),
            lvs: self.buffer(ConfigFile::Lvs),
        }
    }

    fn buffer(&self, file: ConfigFile) -> Vec<u8> {
        let mut bytes = self.editor(file).contents().into_bytes();
        if self.adds_newline(file) {
            bytes.push(b'\n');
        }
        bytes
    }

    /// An editor holds lines; a file that ended in a newline keeps it.
    fn adds_newline(&self, file: ConfigFile) -> bool {
        let lines = self.editor(file).lines();
        let empty = lines.len() == 1 && lines[0].is_empty();
        let ends_with_newline = lines.len() > 1 && lines.last().is_some_and(String::is_empty);
        !empty && !ends_with_newline && self.saved.get(file).ends_with(b"\n")
    }

    /// Whether the buffer of `file` is `bytes`, without building the buffer:
    /// this runs after every keystroke, on files of any size.
    fn buffer_is(&self, file: ConfigFile, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        for (index, line) in self.editor(file).lines().iter().enumerate() {
            if index > 0 {
                let Some(after) = rest.strip_prefix(b"\n") else {
                    return false;
                };
                rest = after;
            }
            let Some(after) = rest.strip_prefix(line.as_bytes()) else {
                return false;
            };
            rest = after;
        }
        rest.is_empty() || (rest == b"\n" && self.adds_newline(file))
    }

    /// Compares the buffers of `files` with the saved and the running files.
    fn compare(&mut self, files: &[ConfigFile]) {
        for &file in files {
            let unsaved = !self.buffer_is(file, self.saved.get(file));
            let unapplied = engine::APPLIED_FILES.contains(&file)
                && self
                    .running
                    .as_ref()
                    .is_none_or(|running| !self.buffer_is(file, running.get(file)));
            for (list, differs) in [
                (&mut self.unsaved, unsaved),
                (&mut self.unapplied, unapplied),
            ] {
                list.retain(|&f| f != file);
                if differs {
                    list.push(file);
                    list.sort();
                }
            }
        }
    }

    /// The files whose buffer differs from the saved file.
    pub fn unsaved(&self) -> &[ConfigFile] {
        &self.unsaved
    }

    /// The applied files whose buffer differs from what runs (all of them when
    /// nothing was ever applied).
    pub fn unapplied(&self) -> &[ConfigFile] {
        &self.unapplied
    }

    /// True while typing has not yet been validated.
    pub fn checking(&self) -> bool {
        self.checked_generation != Some(self.generation)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }

    pub fn update(&mut self, action: Action, now: Instant) -> Vec<Effect> {
        match action {
            Action::Key(key) => self.key(key, now),
            Action::Paste(text) => {
                if self.mode == Mode::Edit
                    && self.overlay.is_none()
                    && let Some(editor) = self.current_editor()
                    && editor.insert_str(&text)
                {
                    self.edited(now);
                }
                Vec::new()
            }
            Action::Resize(width, height) => {
                self.size = (width, height);
                self.follow_cursor();
                Vec::new()
            }
            Action::Tick => self.tick(now),
            Action::RefreshLive => self.refresh_live(),
            Action::Run(command) => self.run(command, now),
            Action::Checked {
                generation,
                diagnostics,
                directors,
            } => {
                if self
                    .checked_generation
                    .is_none_or(|shown| generation >= shown)
                {
                    self.checked_generation = Some(generation);
                    self.diagnostics = diagnostics;
                    self.directors = directors;
                }
                Vec::new()
            }
            Action::Observed(live) => {
                self.observing = false;
                self.live = Some(*live);
                Vec::new()
            }
            Action::Facts(facts) => {
                self.facts = Some(*facts);
                Vec::new()
            }
            Action::Planned(result) => {
                self.busy = None;
                match result {
                    Ok(preview) if preview.operations.is_empty() => {
                        self.note("no changes: the kernel already runs this configuration");
                    }
                    Ok(preview) => self.overlay = Some(Overlay::Plan { preview, scroll: 0 }),
                    Err(error) => self.show_error("Cannot apply", error),
                }
                Vec::new()
            }
            Action::Applied(result) => {
                self.busy = None;
                match result {
                    Ok(applied) => {
                        self.running = Some(applied.running);
                        self.compare(&ConfigFile::ALL);
                        match applied.confirm_within {
                            Some(seconds) => {
                                self.confirm_deadline = Some(now + Duration::from_secs(seconds));
                                self.confirm_left = Some(seconds);
                                let key = self
                                    .keymap
                                    .keys_for(Command::Confirm)
                                    .unwrap_or_else(|| ":confirm".to_owned());
                                self.note(&format!(
                                    "applied {} change(s): confirm within {seconds} s ({key}) or they are undone",
                                    applied.changes
                                ));
                            }
                            None => self.note(&format!(
                                "applied {} change(s), not guarded by a confirm timeout",
                                applied.changes
                            )),
                        }
                    }
                    Err(error) => self.show_error("Apply failed", error),
                }
                // The history marks the version that runs.
                let mut effects = self.refresh_live();
                effects.push(Effect::Engine(Request::History));
                effects
            }
            Action::Saved(result) => {
                self.busy = None;
                match result {
                    Ok(saved) => {
                        (self.saved, self.saved_version) = (saved.files, saved.version);
                        self.compare(&ConfigFile::ALL);
                        self.note(&format!(
                            "saved as version {} in {}",
                            saved.version, self.settings.config_dir
                        ));
                        return vec![Effect::Engine(Request::History)];
                    }
                    Err(refusal) => self.refused("Save failed", refusal),
                }
                Vec::new()
            }
            Action::Confirmed(result) => {
                match result {
                    Ok(text) => {
                        (self.confirm_deadline, self.confirm_left) = (None, None);
                        self.note(&text);
                    }
                    Err(error) => self.show_error("Confirm failed", error),
                }
                Vec::new()
            }
            Action::Reloaded(result) => {
                self.busy = None;
                match *result {
                    Ok(loaded) => {
                        self.load_buffers(loaded);
                        self.note("reloaded the saved files");
                        vec![self.check_now(), Effect::Engine(Request::History)]
                    }
                    Err(error) => {
                        self.show_error("Reload failed", error);
                        Vec::new()
                    }
                }
            }
            Action::History(result) => {
                self.history = Some(result);
                Vec::new()
            }
            Action::Diffed(result) => {
                match result {
                    Ok(diff) => self.overlay = Some(Overlay::Diff { diff, scroll: 0 }),
                    Err(error) => self.show_error("No diff", error),
                }
                Vec::new()
            }
            Action::Replaced(result) => {
                let title = if self.busy == Some(Busy::Importing) {
                    "Import refused"
                } else {
                    "Restore refused"
                };
                self.busy = None;
                match *result {
                    Ok(NewVersion { meta, loaded }) => {
                        self.load_buffers(loaded);
                        self.selected_version = Some(meta.number);
                        let apply = self.keymap.keys_for(Command::Apply).unwrap_or_default();
                        self.note(&format!(
                            "saved version {}: {}; not applied ({apply} applies it)",
                            meta.number, meta.summary
                        ));
                        vec![self.check_now(), Effect::Engine(Request::History)]
                    }
                    Err(refusal) => {
                        self.refused(title, refusal);
                        Vec::new()
                    }
                }
            }
            Action::Exported(result) => {
                self.busy = None;
                match result {
                    Ok((version, path)) => {
                        let edits = if self.unsaved.is_empty() {
                            ""
                        } else {
                            " (as saved: without the unsaved edits)"
                        };
                        self.note(&format!(
                            "exported version {version}{edits} to {}",
                            path.display()
                        ));
                    }
                    Err(error) => self.show_error("Export failed", error),
                }
                Vec::new()
            }
            Action::LooksChanged(result) => {
                match *result {
                    Ok(looks) => {
                        (self.keymap, self.theme) = (looks.keymap, looks.theme);
                        let settings = &mut self.settings;
                        (settings.stored, settings.theme, settings.keymap) =
                            (looks.settings, looks.theme_choice, looks.keymap_choice);
                        let note = format!(
                            "kept in lbconsole.toml: theme {}, keymap {}, confirm timeout {} s",
                            settings.theme.name,
                            settings.keymap.name,
                            settings.stored.confirm_timeout
                        );
                        self.note(&note);
                    }
                    Err(error) => self.show_error("Setting not changed", error),
                }
                Vec::new()
            }
        }
    }

    fn tick(&mut self, now: Instant) -> Vec<Effect> {
        if let Some(deadline) = self.confirm_deadline {
            if now >= deadline {
                (self.confirm_deadline, self.confirm_left) = (None, None);
                // The guard puts back what ran before; what runs is no longer the buffers.
                self.running = None;
                self.compare(&ConfigFile::ALL);
                self.warn("not confirmed in time: the previous configuration is restored");
                let mut effects = self.refresh_live();
                effects.push(Effect::Engine(Request::History));
                return effects;
            }
            self.confirm_left = Some(deadline.saturating_duration_since(now).as_secs());
        }
        let due = self
            .last_edit
            .is_some_and(|at| now.duration_since(at) >= CHECK_DELAY);
        if !due || self.requested_generation == Some(self.generation) {
            return Vec::new();
        }
        vec![self.check_now()]
    }

    fn refresh_live(&mut self) -> Vec<Effect> {
        if self.observing {
            return Vec::new();
        }
        self.observing = true;
        vec![Effect::Engine(Request::Observe)]
    }

    fn edited(&mut self, now: Instant) {
        if let Some(file) = self.tab.file() {
            self.compare(&[file]);
        }
        self.generation += 1;
        self.last_edit = Some(now);
        self.notice = None;
    }

    fn note(&mut self, text: &str) {
        self.notice = Some(Notice {
            text: text.to_owned(),
            is_error: false,
        });
    }

    fn warn(&mut self, text: &str) {
        self.notice = Some(Notice {
            text: text.to_owned(),
            is_error: true,
        });
    }

    fn show_error(&mut self, title: &str, text: String) {
        self.overlay = Some(Overlay::Message {
            title: title.to_owned(),
            text,
            scroll: 0,
        });
    }

    /// The editor's window: the screen less the tab bar, status line, problem
    /// list and live pane (see `ui::layout`).
    fn follow_cursor(&mut self) {
        let (width, height) = super::ui::editor_size(self.size, self.diagnostics.len());
        if let Some(editor) = self.current_editor() {
            editor.follow_cursor(height, width);
        }
    }

    fn key(&mut self, event: KeyEvent, now: Instant) -> Vec<Effect> {
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, event, now);
        }
        let editing = self.mode == Mode::Edit && self.tab.file().is_some();
        if let Some(command) = self.keymap.command(Key::from_event(event), editing) {
            return self.run(command, now);
        }
        if editing {
            if let Some(editor) = self.current_editor()
                && editor.input(Input::from(event))
            {
                self.edited(now);
            }
            self.follow_cursor();
        } else if matches!(event.code, KeyCode::Char(_)) {
            let hint = match self.keymap.keys_for(Command::Edit) {
                Some(key) if self.tab.file().is_some() => format!("press {key} to type, "),
                _ => String::new(),
            };
            let help = self.keymap.keys_for(Command::Help).unwrap_or_default();
            self.warn(&format!("{hint}{help} for all keys"));
        }
        Vec::new()
    }

    fn run(&mut self, command: Command, now: Instant) -> Vec<Effect> {
        let page = super::ui::editor_size(self.size, self.diagnostics.len())
            .1
            .max(1);
        let setup = self.tab == Tab::Setup;
        match command {
            Command::TabNetwork => return self.switch(Tab::Network),
            Command::TabFlows => return self.switch(Tab::Flows),
            Command::TabLvs => return self.switch(Tab::Lvs),
            Command::TabSetup => return self.switch(Tab::Setup),
            Command::NextTab => return self.switch(Tab::ALL[(self.tab.index() + 1) % 4]),
            Command::PrevTab => return self.switch(Tab::ALL[(self.tab.index() + 3) % 4]),
            Command::Edit => self.start_editing(),
            Command::Append => {
                self.move_cursor(CursorMove::Forward);
                self.start_editing();
            }
            Command::OpenLine => {
                if let Some(editor) = self.current_editor() {
                    editor.open_line_below();
                    self.edited(now);
                    self.start_editing();
                }
            }
            Command::StopEditing => self.mode = Mode::Normal,
            Command::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Command::Palette => {
                self.overlay = Some(Overlay::Palette {
                    query: String::new(),
                    selected: 0,
                });
            }
            Command::Search => self.prompt(Prompt::Search, String::new()),
            Command::Export => self.prompt(Prompt::Export, self.archive_path()),
            Command::Import => self.prompt(Prompt::Import, self.archive_path()),
            Command::SetConfirmTimeout => self.prompt(
                Prompt::ConfirmTimeout,
                self.settings.stored.confirm_timeout.to_string(),
            ),
            Command::NextTheme => {
                let theme = self.settings.theme.next();
                return vec![Effect::Engine(Request::ChangeSetting(
                    SettingChange::Theme(theme),
                ))];
            }
            Command::NextKeymap => {
                let keymap = self.settings.keymap.next();
                return vec![Effect::Engine(Request::ChangeSetting(
                    SettingChange::Keymap(keymap),
                ))];
            }
            Command::ShowDiff | Command::DiffEdited => {
                if let Some(version) = self.version_to_act_on().map(|meta| meta.number) {
                    let base = if command == Command::ShowDiff {
                        DiffBase::Previous
                    } else {
                        DiffBase::Edited(self.buffers())
                    };
                    return vec![Effect::Engine(Request::Diff { version, base })];
                }
            }
            Command::RestoreVersion => self.ask_restore(),
            Command::Quit => return self.quit(),
            Command::Apply => return self.apply(),
            Command::Save => self.save(),
            Command::Confirm if self.confirm_deadline.is_some() => {
                return vec![Effect::Engine(Request::Confirm)];
            }
            Command::Confirm => self.warn("no apply is waiting for confirmation"),
            Command::Reload => {
                if self.unsaved().is_empty() {
                    return self.reload();
                }
                self.overlay = Some(Overlay::Ask {
                    question: Question::Reload,
                    text: format!(
                        "Throw away the edits of {} and reload the saved files?",
                        names(self.unsaved())
                    ),
                });
            }
            Command::Undo | Command::Redo | Command::DeleteChar => {
                let changed = self.current_editor().is_some_and(|editor| match command {
                    Command::Undo => editor.undo(),
                    Command::Redo => editor.redo(),
                    _ => editor.delete_next_char(),
                });
                if changed {
                    self.edited(now);
                }
            }
            Command::MoveUp if setup => self.move_selection(-1),
            Command::MoveDown if setup => self.move_selection(1),
            Command::PageUp if setup => self.move_selection(-(page as isize)),
            Command::PageDown if setup => self.move_selection(page as isize),
            Command::BufferTop if setup => self.move_selection(isize::MIN),
            Command::BufferBottom if setup => self.move_selection(isize::MAX),
            Command::NextProblem => self.jump_to_problem(true),
            Command::PrevProblem => self.jump_to_problem(false),
            Command::SearchNext | Command::SearchPrev => self.search_again(command),
            Command::MoveUp => self.move_cursor(CursorMove::Up),
            Command::MoveDown => self.move_cursor(CursorMove::Down),
            Command::MoveLeft => self.move_cursor(CursorMove::Back),
            Command::MoveRight => self.move_cursor(CursorMove::Forward),
            Command::WordForward => self.move_cursor(CursorMove::WordForward),
            Command::WordBack => self.move_cursor(CursorMove::WordBack),
            Command::LineStart => self.move_cursor(CursorMove::Head),
            Command::LineEnd => self.move_cursor(CursorMove::End),
            Command::BufferTop => self.move_cursor(CursorMove::Top),
            Command::BufferBottom => self.move_cursor(CursorMove::Bottom),
            Command::PageUp | Command::PageDown => {
                if let Some(editor) = self.current_editor() {
                    editor.page(page, command == Command::PageDown);
                }
            }
        }
        self.follow_cursor();
        Vec::new()
    }

    fn switch(&mut self, tab: Tab) -> Vec<Effect> {
        let arriving = tab != self.tab;
        self.tab = tab;
        self.follow_cursor();
        if tab.file().is_some() {
            return Vec::new();
        }
        self.mode = Mode::Normal;
        // Someone may have saved, or edited the config dir, since it was read.
        if arriving {
            vec![Effect::Engine(Request::History)]
        } else {
            Vec::new()
        }
    }

    fn prompt(&mut self, prompt: Prompt, input: String) {
        self.overlay = Some(Overlay::Prompt { prompt, input });
    }

    /// The archive a prompt offers: the last one, or one named after the
    /// saved version in the current directory.
    fn archive_path(&self) -> String {
        self.archive_path
            .clone()
            .unwrap_or_else(|| format!("lbconsole-{}.toml", self.saved_version))
    }

    fn submit(&mut self, prompt: Prompt, input: String) -> Vec<Effect> {
        match prompt {
            Prompt::Search => return self.search_for(input),
            Prompt::Export | Prompt::Import if input.trim().is_empty() => {
                self.warn("no file named");
                self.prompt(prompt, input);
            }
            _ if self.refuse_when_busy() => {}
            Prompt::Export => {
                self.archive_path = Some(input.clone());
                self.busy = Some(Busy::Exporting);
                return vec![Effect::Engine(Request::Export(PathBuf::from(input)))];
            }
            Prompt::Import if self.unsaved.is_empty() => return self.import(input),
            Prompt::Import => {
                self.archive_path = Some(input.clone());
                self.overlay = Some(Overlay::Ask {
                    text: format!(
                        "Import {input}? It becomes the saved configuration as a new version, \
                         and your unsaved edits of {} are thrown away.",
                        names(&self.unsaved)
                    ),
                    question: Question::Import(input),
                });
            }
            Prompt::ConfirmTimeout => {
                let seconds = input
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("`{input}` is not a whole number of seconds"));
                match seconds.and_then(|seconds| {
                    store::settings::check_confirm_timeout(seconds).map(|()| seconds)
                }) {
                    Ok(seconds) => {
                        return vec![Effect::Engine(Request::ChangeSetting(
                            SettingChange::ConfirmTimeout(seconds),
                        ))];
                    }
                    Err(why) => {
                        self.warn(&why);
                        self.prompt(prompt, input);
                    }
                }
            }
        }
        Vec::new()
    }

    fn import(&mut self, path: String) -> Vec<Effect> {
        self.archive_path = Some(path.clone());
        self.busy = Some(Busy::Importing);
        vec![Effect::Engine(Request::Import {
            path: PathBuf::from(path),
            expect_version: self.saved_version,
        })]
    }

    /// The version selected in the Setup tab's history; a warning instead
    /// elsewhere, or when there is none.
    fn version_to_act_on(&mut self) -> Option<VersionMeta> {
        if self.tab != Tab::Setup {
            let key = self.keymap.keys_for(Command::TabSetup).unwrap_or_default();
            self.warn(&format!(
                "select a version in the history of the Setup tab ({key}) first"
            ));
            return None;
        }
        let selected = self.selected().map(|(_, meta)| meta.clone());
        if selected.is_none() {
            self.warn("no version to select: nothing was saved yet");
        }
        selected
    }

    fn ask_restore(&mut self) {
        let Some(meta) = self.version_to_act_on() else {
            return;
        };
        if meta.number == self.saved_version && self.unsaved.is_empty() {
            self.note(&format!(
                "version {} is the saved configuration already",
                meta.number
            ));
            return;
        }
        let mut text = format!(
            "Restore version {} ({} by {} at {})? It becomes the saved configuration as a \
             new version; it is not applied.",
            meta.number,
            meta.origin.name(),
            meta.user,
            meta.time
        );
        if !self.unsaved.is_empty() {
            text.push_str(&format!(
                " Your unsaved edits of {} are thrown away.",
                names(&self.unsaved)
            ));
        }
        self.overlay = Some(Overlay::Ask {
            question: Question::Restore(meta.number),
            text,
        });
    }

    /// Says so when an engine request is in flight, so that none is sent twice.
    fn refuse_when_busy(&mut self) -> bool {
        match self.busy {
            Some(busy) => {
                self.warn(&format!("busy: {busy:?}").to_lowercase());
                true
            }
            None => false,
        }
    }

    fn refused(&mut self, title: &str, refusal: Refusal) {
        match refusal {
            Refusal::Stale(text) => self.overlay = Some(Overlay::Stale { text }),
            Refusal::Failed(text) => self.show_error(title, text),
        }
    }

    fn start_editing(&mut self) {
        if self.tab.file().is_some() {
            self.mode = Mode::Edit;
        } else {
            self.warn("the Setup tab has no file to type into (F1-F3 have)");
        }
    }

    fn move_cursor(&mut self, to: CursorMove) {
        if let Some(editor) = self.current_editor() {
            editor.move_cursor(to);
        }
    }

    fn quit(&mut self) -> Vec<Effect> {
        let unsaved = self.unsaved.clone();
        let unapplied = self.unapplied.clone();
        let mut reasons = Vec::new();
        if !unsaved.is_empty() {
            reasons.push(format!("unsaved edits in {}", names(&unsaved)));
        }
        // A config nobody applied yet is no reason to ask, unless it was edited.
        let never_applied = self.running.is_none() && unsaved.is_empty();
        if !unapplied.is_empty() && !never_applied {
            reasons.push(format!("{} not applied", names(&unapplied)));
        }
        if reasons.is_empty() {
            return vec![Effect::Quit];
        }
        self.overlay = Some(Overlay::Ask {
            question: Question::Quit,
            text: format!("Quit with {}?", reasons.join(" and ")),
        });
        Vec::new()
    }

    fn apply(&mut self) -> Vec<Effect> {
        if self.refuse_when_busy() {
            return Vec::new();
        }
        let errors = self.count(Severity::Error);
        if errors > 0 && !self.checking() {
            let key = self
                .keymap
                .keys_for(Command::NextProblem)
                .unwrap_or_default();
            self.warn(&format!(
                "{errors} error(s): nothing can be applied until they are fixed ({key} jumps to the next)"
            ));
            return Vec::new();
        }
        self.busy = Some(Busy::Planning);
        vec![Effect::Engine(Request::Plan(self.buffers()))]
    }

    fn save(&mut self) {
        let buffers = self.buffers();
        let mut diff = String::new();
        for file in ConfigFile::ALL {
            let old = String::from_utf8_lossy(self.saved.get(file));
            let new = String::from_utf8_lossy(buffers.get(file));
            if old != new {
                let name = file.file_name();
                diff.push_str(
                    &similar::TextDiff::from_lines(&old, &new)
                        .unified_diff()
                        .context_radius(2)
                        .header(&format!("saved/{name}"), &format!("edited/{name}"))
                        .to_string(),
                );
            }
        }
        if diff.is_empty() {
            self.note("nothing to save: the files are as saved");
            return;
        }
        self.overlay = Some(Overlay::SaveDiff {
            diff,
            errors: self.count(Severity::Error),
            scroll: 0,
        });
    }

    fn reload(&mut self) -> Vec<Effect> {
        self.busy = Some(Busy::Reloading);
        vec![Effect::Engine(Request::Reload)]
    }

    fn jump_to_problem(&mut self, forward: bool) {
        let Some(current) = self.tab.file().or(self.diagnostics.first().map(|d| d.file)) else {
            self.note("no problems");
            return;
        };
        let (line, _) = self.editor(current).cursor();
        // Diagnostics are sorted by file, line and column: order by where they
        // stand from the cursor, going round.
        let here = (current, line as u32 + 1);
        let next = if forward {
            self.diagnostics
                .iter()
                .find(|d| (d.file, d.line) > here)
                .or(self.diagnostics.first())
        } else {
            self.diagnostics
                .iter()
                .rev()
                .find(|d| (d.file, d.line) < here)
                .or(self.diagnostics.last())
        };
        let Some(problem) = next.cloned() else {
            self.note("no problems");
            return;
        };
        self.tab = Tab::of(problem.file);
        self.editors[problem.file as usize].jump(
            problem.line as usize - 1,
            (problem.col as usize).saturating_sub(1),
        );
        self.notice = Some(Notice {
            text: problem.to_string(),
            is_error: problem.is_error(),
        });
    }

    fn search_again(&mut self, command: Command) {
        let Some(editor) = self.current_editor() else {
            return;
        };
        if !editor.has_search() {
            self.warn("no search yet");
            return;
        }
        let found = if command == Command::SearchNext {
            editor.search_forward()
        } else {
            editor.search_back()
        };
        if !found {
            let search = self.search.clone();
            self.warn(&format!("`{search}` not found"));
        }
    }

    fn overlay_key(&mut self, mut overlay: Overlay, event: KeyEvent, now: Instant) -> Vec<Effect> {
        match overlay.key(event, &self.keymap) {
            Outcome::Stay => self.overlay = Some(overlay),
            Outcome::Close => {}
            Outcome::Run(command) => return self.run(command, now),
            Outcome::Answer => return self.answer(overlay),
        }
        Vec::new()
    }

    /// Carries out what a dialog closed with: its yes, a reload, a prompt's text.
    fn answer(&mut self, overlay: Overlay) -> Vec<Effect> {
        match overlay {
            Overlay::Plan { preview, .. } => {
                self.busy = Some(Busy::Applying);
                let tear_down = if preview.tears_down {
                    TearDown::Allow
                } else {
                    TearDown::Refuse
                };
                vec![Effect::Engine(Request::Apply {
                    files: self.buffers(),
                    tear_down,
                })]
            }
            Overlay::SaveDiff { .. } => {
                self.busy = Some(Busy::Saving);
                vec![Effect::Engine(Request::Save {
                    files: self.buffers(),
                    expected: self.saved.clone(),
                })]
            }
            Overlay::Ask { question, .. } => match question {
                Question::Quit => vec![Effect::Quit],
                Question::Reload => self.reload(),
                Question::Restore(version) => {
                    self.busy = Some(Busy::Restoring);
                    vec![Effect::Engine(Request::Restore {
                        version,
                        expect_version: self.saved_version,
                    })]
                }
                Question::Import(path) => self.import(path),
            },
            Overlay::Stale { .. } => self.reload(),
            Overlay::Prompt { prompt, input } => self.submit(prompt, input),
            Overlay::Help { .. }
            | Overlay::Palette { .. }
            | Overlay::Diff { .. }
            | Overlay::Message { .. } => Vec::new(),
        }
    }

    fn search_for(&mut self, query: String) -> Vec<Effect> {
        let Some(editor) = self.current_editor() else {
            self.warn("the Setup tab has no file to search");
            return Vec::new();
        };
        match editor.set_search(&query) {
            Err(error) => self.warn(&format!("not a valid pattern: {error}")),
            Ok(()) => {
                let found = query.is_empty() || editor.search_forward();
                self.search = query;
                if !found {
                    let search = self.search.clone();
                    self.warn(&format!("`{search}` not found"));
                }
            }
        }
        self.follow_cursor();
        Vec::new()
    }
}

fn names(files: &[ConfigFile]) -> String {
    files
        .iter()
        .map(|f| f.file_name())
        .collect::<Vec<_>>()
        .join(", ")
}
