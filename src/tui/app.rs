//! The console's state, the actions that change it, and `update`: keys become
//! commands through the keymap, commands change the state, and whatever needs
//! the disk or the kernel leaves as an [`Effect`] whose answer comes back as an
//! [`Action`]. Nothing here waits or draws.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::{CursorMove, Input};

use super::editor::Editor;
use super::engine::{self, Applied, Facts, Live, Loaded, PlanPreview, Request};
use super::keymap::{Command, Key, Keymap};
use super::theme::Theme;
use crate::config::{ConfigFile, Diagnostic, Severity};
use crate::plan::ipvs::ServiceKey;
use crate::store::ConfigFiles;

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

/// What a yes in an [`Overlay::Ask`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    Quit,
    Reload,
}

/// A window over the tabs that takes the keys until it closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    Palette {
        query: String,
        selected: usize,
    },
    Search {
        query: String,
    },
    /// The plan of an apply, waiting for yes.
    Plan {
        preview: PlanPreview,
        scroll: u16,
    },
    /// The text diff of a save, waiting for yes.
    SaveDiff {
        diff: String,
        errors: usize,
        scroll: u16,
    },
    Ask {
        question: Question,
        text: String,
    },
    /// A save refused because the files changed on disk: reload or go on editing.
    Stale {
        text: String,
    },
    Message {
        title: String,
        text: String,
        scroll: u16,
    },
}

/// An engine request in flight, so that it is not sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    Planning,
    Applying,
    Saving,
    Reloading,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// How the theme and keymap were chosen, for the Setup tab.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub config_dir: String,
    pub state_dir: String,
    pub theme: String,
    pub keymap: String,
    /// What the sandbox provides, when the console runs in one.
    pub sandbox: Option<String>,
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
    Saved(Result<ConfigFiles, String>),
    Reloaded(Box<Result<Loaded, String>>),
    Confirmed(Result<String, String>),
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
    pub running: Option<ConfigFiles>,
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
        let text = |file| String::from_utf8_lossy(loaded.saved.get(file)).into_owned();
        let mut app = Self {
            tab: Tab::Network,
            mode: Mode::Normal,
            overlay: None,
            editors: ConfigFile::ALL.map(|file| Editor::new(&text(file))),
            diagnostics: Vec::new(),
            directors: BTreeMap::new(),
            generation: 0,
            checked_generation: None,
            requested_generation: None,
            last_edit: None,
            saved: loaded.saved,
            running: loaded.running,
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
        app.compare(&ConfigFile::ALL);
        app
    }

    /// What the console asks for when it starts: a first validation, the
    /// kernel's state and the machine's facts.
    pub fn start(&mut self) -> Vec<Effect> {
        self.requested_generation = Some(self.generation);
        let mut effects = vec![
            Effect::Check {
                generation: self.generation,
                files: self.buffers(),
            },
            Effect::Engine(Request::Facts),
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
                self.refresh_live()
            }
            Action::Saved(result) => {
                self.busy = None;
                match result {
                    Ok(files) => {
                        self.saved = files;
                        self.compare(&ConfigFile::ALL);
                        self.note(&format!("saved to {}", self.settings.config_dir));
                    }
                    Err(error)
                        if error.contains("changed on disk")
                            || error.contains("reload or merge") =>
                    {
                        self.overlay = Some(Overlay::Stale { text: error });
                    }
                    Err(error) => self.show_error("Save failed", error),
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
                        let tab = self.tab;
                        let (keymap, theme) = (self.keymap.clone(), self.theme.clone());
                        let settings = std::mem::take(&mut self.settings);
                        let (live, facts, size) = (self.live.take(), self.facts.take(), self.size);
                        *self = Self::new(loaded, keymap, theme, settings);
                        (self.tab, self.live, self.facts, self.size) = (tab, live, facts, size);
                        self.note("reloaded the saved files");
                        self.requested_generation = Some(self.generation);
                        vec![Effect::Check {
                            generation: self.generation,
                            files: self.buffers(),
                        }]
                    }
                    Err(error) => {
                        self.show_error("Reload failed", error);
                        Vec::new()
                    }
                }
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
                return self.refresh_live();
            }
            self.confirm_left = Some(deadline.saturating_duration_since(now).as_secs());
        }
        let due = self
            .last_edit
            .is_some_and(|at| now.duration_since(at) >= CHECK_DELAY);
        if !due || self.requested_generation == Some(self.generation) {
            return Vec::new();
        }
        self.requested_generation = Some(self.generation);
        vec![Effect::Check {
            generation: self.generation,
            files: self.buffers(),
        }]
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
        match command {
            Command::TabNetwork => self.switch(Tab::Network),
            Command::TabFlows => self.switch(Tab::Flows),
            Command::TabLvs => self.switch(Tab::Lvs),
            Command::TabSetup => self.switch(Tab::Setup),
            Command::NextTab => self.switch(Tab::ALL[(self.tab.index() + 1) % 4]),
            Command::PrevTab => self.switch(Tab::ALL[(self.tab.index() + 3) % 4]),
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
            Command::Search => {
                self.overlay = Some(Overlay::Search {
                    query: String::new(),
                });
            }
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

    fn switch(&mut self, tab: Tab) {
        self.tab = tab;
        if tab.file().is_none() {
            self.mode = Mode::Normal;
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
        if let Some(busy) = self.busy {
            self.warn(&format!("busy: {busy:?}").to_lowercase());
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

    fn overlay_key(&mut self, overlay: Overlay, event: KeyEvent, now: Instant) -> Vec<Effect> {
        let code = event.code;
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let cancel = code == KeyCode::Esc || (ctrl && code == KeyCode::Char('c'));
        let yes = matches!(code, KeyCode::Char('y' | 'Y') | KeyCode::Enter);
        let scrolled = |scroll: u16| match code {
            KeyCode::Down | KeyCode::Char('j') => Some(scroll.saturating_add(1)),
            KeyCode::Up | KeyCode::Char('k') => Some(scroll.saturating_sub(1)),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(scroll.saturating_add(10)),
            KeyCode::PageUp => Some(scroll.saturating_sub(10)),
            _ => None,
        };
        match overlay {
            Overlay::Help { scroll } => {
                if let Some(scroll) = scrolled(scroll) {
                    self.overlay = Some(Overlay::Help { scroll });
                }
            }
            Overlay::Message {
                title,
                text,
                scroll,
            } => {
                if let Some(scroll) = scrolled(scroll) {
                    self.overlay = Some(Overlay::Message {
                        title,
                        text,
                        scroll,
                    });
                }
            }
            Overlay::Plan { preview, scroll } => {
                if yes {
                    self.busy = Some(Busy::Applying);
                    return vec![Effect::Engine(Request::Apply(self.buffers()))];
                } else if !cancel && code != KeyCode::Char('n') {
                    let scroll = scrolled(scroll).unwrap_or(scroll);
                    self.overlay = Some(Overlay::Plan { preview, scroll });
                }
            }
            Overlay::SaveDiff {
                diff,
                errors,
                scroll,
            } => {
                if yes {
                    self.busy = Some(Busy::Saving);
                    return vec![Effect::Engine(Request::Save {
                        files: self.buffers(),
                        expected: self.saved.clone(),
                    })];
                } else if !cancel && code != KeyCode::Char('n') {
                    let scroll = scrolled(scroll).unwrap_or(scroll);
                    self.overlay = Some(Overlay::SaveDiff {
                        diff,
                        errors,
                        scroll,
                    });
                }
            }
            Overlay::Ask { question, text } => {
                if yes {
                    return match question {
                        Question::Quit => vec![Effect::Quit],
                        Question::Reload => self.reload(),
                    };
                } else if !cancel && code != KeyCode::Char('n') {
                    self.overlay = Some(Overlay::Ask { question, text });
                }
            }
            Overlay::Stale { text } => {
                if code == KeyCode::Char('r') {
                    return self.reload();
                } else if !cancel {
                    self.overlay = Some(Overlay::Stale { text });
                }
            }
            Overlay::Search { mut query } => match code {
                KeyCode::Enter => return self.search_for(query),
                KeyCode::Backspace => {
                    query.pop();
                    self.overlay = Some(Overlay::Search { query });
                }
                KeyCode::Char(c) if !ctrl => {
                    query.push(c);
                    self.overlay = Some(Overlay::Search { query });
                }
                _ if cancel => {}
                _ => self.overlay = Some(Overlay::Search { query }),
            },
            Overlay::Palette {
                mut query,
                mut selected,
            } => {
                let count = palette_entries(&self.keymap, &query).len();
                match code {
                    KeyCode::Enter => {
                        let chosen = palette_entries(&self.keymap, &query)
                            .get(selected)
                            .map(|(command, _, _)| *command);
                        return match chosen {
                            Some(command) => self.run(command, now),
                            None => Vec::new(),
                        };
                    }
                    KeyCode::Down | KeyCode::Tab => {
                        selected = (selected + 1).min(count.saturating_sub(1))
                    }
                    KeyCode::Up | KeyCode::BackTab => selected = selected.saturating_sub(1),
                    KeyCode::Backspace => {
                        query.pop();
                        selected = 0;
                    }
                    KeyCode::Char(c) if !ctrl => {
                        query.push(c);
                        selected = 0;
                    }
                    _ if cancel => return Vec::new(),
                    _ => {}
                }
                self.overlay = Some(Overlay::Palette { query, selected });
            }
        }
        Vec::new()
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

/// The palette's entries for `query`: commands whose name or description
/// contains it, as (command, description, keys).
pub fn palette_entries<'k>(keymap: &'k Keymap, query: &str) -> Vec<(Command, &'k str, String)> {
    let query = query.trim().to_lowercase();
    keymap
        .commands()
        .into_iter()
        .filter(|(command, desc, _)| {
            command.name().contains(&query) || desc.to_lowercase().contains(&query)
        })
        .collect()
}

fn names(files: &[ConfigFile]) -> String {
    files
        .iter()
        .map(|f| f.file_name())
        .collect::<Vec<_>>()
        .join(", ")
}
