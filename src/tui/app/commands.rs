//! What the keymap's commands do to the state, and what dialogs answered:
//! moving, editing, the dialogs they open, and the effects they send.

use std::path::PathBuf;
use std::time::Instant;

use ratatui_textarea::CursorMove;

use super::{App, Busy, Effect, Mode, Notice, Overlay, Prompt, Question, Tab, names};
use crate::apply::TearDown;
use crate::config::{ConfigFile, Severity};
use crate::store::{self, VersionMeta};
use crate::tui::engine::{DiffBase, ImportPreview, Request, SettingChange};
use crate::tui::keymap::Command;
use crate::tui::ui;

impl App {
    /// Moves the selection `by` versions: negative to newer ones.
    pub(super) fn move_selection(&mut self, by: isize) {
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

    pub(super) fn run(&mut self, command: Command, now: Instant) -> Vec<Effect> {
        let page = ui::editor_size(self.size, self.diagnostics.len(), self.events_shown)
            .1
            .max(1);
        let setup = self.tab == Tab::Setup;
        if self.pane_focused()
            && let Some(effects) = self.pane_command(command, page)
        {
            return effects;
        }
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
            Command::SyncPeer => return self.compare_with_peer(),
            Command::ToggleRates => {
                self.rates_shown = !self.rates_shown || self.tab != Tab::Lvs;
                return self.switch(Tab::Lvs);
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
            Command::FocusPane
            | Command::Filter
            | Command::NextSort
            | Command::Drain
            | Command::Disable
            | Command::Enable
            | Command::SetWeight => self.pane_action(command),
            // Outside the pane: nothing to mark, nothing to leave.
            Command::ToggleMark | Command::LeavePane => {}
            Command::ToggleEvents => self.events_shown = !self.events_shown,
        }
        self.follow_cursor();
        Vec::new()
    }

    pub(super) fn switch(&mut self, tab: Tab) -> Vec<Effect> {
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

    pub(super) fn prompt(&mut self, prompt: Prompt, input: String) {
        self.overlay = Some(Overlay::Prompt { prompt, input });
    }

    /// The archive a prompt offers: the last one, or one named after the
    /// saved version in the current directory.
    pub(super) fn archive_path(&self) -> String {
        self.archive_path
            .clone()
            .unwrap_or_else(|| format!("lbconsole-{}.toml", self.saved_version))
    }

    pub(super) fn submit(&mut self, prompt: Prompt, input: String) -> Vec<Effect> {
        match prompt {
            Prompt::Search => return self.search_for(input),
            Prompt::Filter => self.pane.filter = input,
            Prompt::Weight => self.weight_typed(input),
            Prompt::Note(hold) => return self.note_typed(hold, &input),
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
            Prompt::Import => {
                self.archive_path = Some(input.clone());
                self.busy = Some(Busy::ReadingImport);
                return vec![Effect::Engine(Request::PreviewImport {
                    path: PathBuf::from(input),
                    expect_version: self.saved_version,
                })];
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

    /// Imports what the preview showed, if the saved version is still the
    /// one it replaces.
    fn import(&mut self, preview: ImportPreview) -> Vec<Effect> {
        self.busy = Some(Busy::Importing);
        vec![Effect::Engine(Request::Import {
            path: preview.path,
            expect_version: preview.replaces,
        })]
    }

    /// The version selected in the Setup tab's history; a warning instead
    /// elsewhere, or when there is none.
    pub(super) fn version_to_act_on(&mut self) -> Option<VersionMeta> {
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

    pub(super) fn ask_restore(&mut self) {
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
    pub(super) fn refuse_when_busy(&mut self) -> bool {
        match self.busy {
            Some(busy) => {
                self.warn(&format!("busy: {busy:?}").to_lowercase());
                true
            }
            None => false,
        }
    }

    pub(super) fn start_editing(&mut self) {
        if self.tab.file().is_some() {
            self.mode = Mode::Edit;
        } else {
            self.warn("the Setup tab has no file to type into (F1-F3 have)");
        }
    }

    pub(super) fn move_cursor(&mut self, to: CursorMove) {
        if let Some(editor) = self.current_editor() {
            editor.move_cursor(to);
        }
    }

    pub(super) fn quit(&mut self) -> Vec<Effect> {
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

    pub(super) fn apply(&mut self) -> Vec<Effect> {
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

    /// Compares the saved files with the peer's; the answer shows the diff
    /// and asks before anything is sent.
    pub(super) fn compare_with_peer(&mut self) -> Vec<Effect> {
        if self.refuse_when_busy() {
            return Vec::new();
        }
        self.busy = Some(Busy::ComparingPeer);
        // Without a pair running, the engine takes the saved network.conf's peer.
        vec![Effect::Engine(Request::ComparePeer(self.peer()))]
    }

    pub(super) fn save(&mut self) {
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

    pub(super) fn reload(&mut self) -> Vec<Effect> {
        self.busy = Some(Busy::Reloading);
        vec![Effect::Engine(Request::Reload)]
    }

    pub(super) fn jump_to_problem(&mut self, forward: bool) {
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

    pub(super) fn search_again(&mut self, command: Command) {
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

    /// Carries out what a dialog closed with: its yes, a reload, a prompt's text.
    pub(super) fn answer(&mut self, overlay: Overlay) -> Vec<Effect> {
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
            },
            Overlay::Import { preview, .. } => self.import(preview),
            Overlay::PeerSync { comparison, .. } => {
                self.busy = Some(Busy::SyncingPeer);
                vec![Effect::Engine(Request::SyncPeer {
                    peer: comparison.peer,
                    expect_version: comparison.version,
                })]
            }
            Overlay::Stale { .. } => self.reload(),
            Overlay::Prompt { prompt, input } => self.submit(prompt, input),
            Overlay::Help { .. }
            | Overlay::Palette { .. }
            | Overlay::Diff { .. }
            | Overlay::Message { .. } => Vec::new(),
        }
    }

    pub(super) fn search_for(&mut self, query: String) -> Vec<Effect> {
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
