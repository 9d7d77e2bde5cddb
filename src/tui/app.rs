//! The console's state, the actions that change it, and `update`: keys become
//! commands through the keymap, commands change the state, and whatever needs
//! the disk or the kernel leaves as an [`Effect`] whose answer comes back as an
//! [`Action`]. Nothing here waits or draws.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::Input;

use super::Looks;
use super::editor::Editor;
use super::engine::{
    self, Applied, Diff, Directors, Facts, Failure, History, ImportPreview, Live, Loaded,
    NewVersion, Operated, PeerComparison, PeerSync, PlanPreview, Refusal, Request, ServerLine,
};
use super::keymap::{Command, Key, Keymap};
use super::overlay::Outcome;
pub use super::overlay::{Overlay, Prompt, Question};
use super::rates::Rates;

mod answers;
mod commands;
mod pane;
use super::theme::Theme;
use crate::config::{ConfigFile, Diagnostic, Severity};
use crate::plan::ipvs::ServiceKey;
use crate::plan::overrides::Hold;
use crate::store::{self, ConfigFiles, Saved, VersionMeta};
pub use pane::Pane;

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
    /// Reading what an import would save, to show it.
    ReadingImport,
    Importing,
    Exporting,
    ComparingPeer,
    SyncingPeer,
    /// Draining, disabling, enabling or reweighting servers.
    Operating,
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
        directors: Directors,
    },
    Observed(Box<Live>),
    Facts(Box<Facts>),
    Planned(Result<PlanPreview, Failure>),
    Applied(Result<Applied, Failure>),
    Saved(Result<Saved, Refusal>),
    Reloaded(Box<Result<Loaded, String>>),
    Confirmed(Result<String, String>),
    History(Result<History, String>),
    Diffed(Result<Diff, String>),
    /// What an import would change, or why it cannot be done.
    ImportPreviewed(Result<ImportPreview, Refusal>),
    /// A restore or an import made a new saved version.
    Replaced(Box<Result<NewVersion, Refusal>>),
    /// The version exported and the file it went to.
    Exported(Result<(u64, PathBuf), String>),
    LooksChanged(Box<Result<Looks, String>>),
    PeerCompared(Result<PeerComparison, String>),
    /// The peer's report of what it saved, or why it refused.
    PeerSynced {
        peer: String,
        result: Result<String, String>,
    },
    /// What each server's drain, disable, enable (`hold` `None`) or weight did.
    Operated {
        hold: Option<Hold>,
        outcomes: Vec<Operated>,
    },
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
    /// The real servers of the edited lvs.conf, for the pane and the gutter.
    pub servers: Vec<ServerLine>,
    /// The LB Layer4 live pane's focus, selection, marks, filter and sort.
    pub pane: Pane,
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
    /// The last minutes of the live polls' IPVS rates, for the sparklines.
    pub rates: Rates,
    /// The LB Layer4 pane shows the sparklines instead of the services.
    pub rates_shown: bool,
    observing: bool,
    pub facts: Option<Facts>,
    /// The last comparison of this box's saved files with the peer's; `None`
    /// until asked for, and again once this box saves another version.
    pub peer_sync: Option<PeerSync>,
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
    /// The events pane is shown under the tab's panes.
    pub events_shown: bool,
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
            servers: Vec::new(),
            pane: Pane::default(),
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
            rates: Rates::default(),
            rates_shown: false,
            observing: false,
            facts: None,
            peer_sync: None,
            busy: None,
            confirm_deadline: None,
            confirm_left: None,
            notice: None,
            keymap,
            theme,
            settings,
            size: (80, 24),
            search: String::new(),
            events_shown: false,
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
        let lines = self.editor(file).lines();
        // Typing changes the length: that answer costs a sum over the lines, not a
        // comparison of every byte up to the edit. `+ 1`: a kept final newline.
        let joined_len = lines.iter().map(String::len).sum::<usize>() + lines.len() - 1;
        if bytes.len() != joined_len && bytes.len() != joined_len + 1 {
            return false;
        }
        let mut rest = bytes;
        for (index, line) in lines.iter().enumerate() {
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

    /// The peer that configuration sync goes to: the first `peer` of the
    /// pair, as the daemon runs it.
    pub fn peer(&self) -> Option<String> {
        let live = self.live.as_ref()?;
        let status = live.vrrp.as_ref().ok()?.as_ref()?;
        status.peers.first().map(ToString::to_string)
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
            Action::Paste(text) => self.paste(&text, now),
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
            } => self.checked(generation, diagnostics, directors),
            Action::Observed(live) => self.observed(*live),
            Action::Facts(facts) => {
                self.facts = Some(*facts);
                Vec::new()
            }
            Action::Planned(result) => self.planned(result),
            Action::Applied(result) => self.applied(result, now),
            Action::Saved(result) => self.saved(result),
            Action::Confirmed(result) => self.confirmed(result),
            Action::Reloaded(result) => self.reloaded(*result),
            Action::History(result) => {
                self.history = Some(result);
                Vec::new()
            }
            Action::Diffed(result) => self.diffed(result),
            Action::ImportPreviewed(result) => self.import_previewed(result),
            Action::Replaced(result) => self.replaced(*result),
            Action::Exported(result) => self.exported(result),
            Action::LooksChanged(result) => self.looks_changed(*result),
            Action::PeerCompared(result) => self.peer_compared(result),
            Action::PeerSynced { peer, result } => self.peer_synced(peer, result),
            Action::Operated { hold, outcomes } => self.operated(outcomes, hold),
        }
    }

    fn paste(&mut self, text: &str, now: Instant) -> Vec<Effect> {
        if self.mode == Mode::Edit
            && self.overlay.is_none()
            && let Some(editor) = self.current_editor()
            && editor.insert_str(text)
        {
            self.edited(now);
        }
        Vec::new()
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
        let checks_of = self.pane_checks_of();
        vec![Effect::Engine(Request::Observe { checks_of })]
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
        let (width, height) =
            super::ui::editor_size(self.size, self.diagnostics.len(), self.events_shown);
        if let Some(editor) = self.current_editor() {
            editor.follow_cursor(height, width);
        }
    }

    fn key(&mut self, event: KeyEvent, now: Instant) -> Vec<Effect> {
        if let Some(overlay) = self.overlay.take() {
            return self.overlay_key(overlay, event, now);
        }
        if self.pane_focused() {
            match self.keymap.pane_command(Key::from_event(event)) {
                Some(command) => return self.run(command, now),
                None => {
                    let help = self.keymap.pane_hint(Command::Help).unwrap_or_default().0;
                    self.warn(&format!("{help} for the live pane's keys"));
                    return Vec::new();
                }
            }
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

    /// Whether the LB Layer4 live pane has the keys.
    pub fn pane_focused(&self) -> bool {
        self.pane.focused && self.tab == Tab::Lvs
    }

    fn overlay_key(&mut self, mut overlay: Overlay, event: KeyEvent, now: Instant) -> Vec<Effect> {
        let outcome = overlay.key(event, &self.keymap);
        // The pane follows the filter as it is typed; a cancel clears it.
        if let Overlay::Prompt {
            prompt: Prompt::Filter,
            input,
        } = &overlay
        {
            self.pane.filter = match outcome {
                Outcome::Close => String::new(),
                _ => input.clone(),
            };
        }
        match outcome {
            Outcome::Stay => self.overlay = Some(overlay),
            Outcome::Close => {}
            Outcome::Run(command) => return self.run(command, now),
            Outcome::Answer => return self.answer(overlay),
        }
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
