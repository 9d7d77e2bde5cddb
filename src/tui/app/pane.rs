//! The LB Layer4 live pane as a place to work: its focus, selection, marks,
//! filter and sort, and the drain, disable, enable and weight it sends to the
//! engine (`operate::change`, once per server).

use std::collections::BTreeSet;

use super::{App, Busy, Effect, Overlay, Prompt, Tab};
use crate::operate::Target;
use crate::plan::overrides::{Hold, Overrides};
use crate::tui::engine::{Operated, Request};
use crate::tui::keymap::Command;
use crate::tui::tabs::lvs::{self, Filter, Group, Row, RowKey, Sort};

/// The pane's state; it lasts while the console runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pane {
    /// The pane has the keys (its keymap section applies).
    pub focused: bool,
    /// The row selected; the first one shown when `None` or gone.
    pub selected: Option<RowKey>,
    pub marked: BTreeSet<RowKey>,
    /// As typed after `/`: `!` in front inverts it.
    pub filter: String,
    pub sort: Sort,
}

impl App {
    /// The directors and servers the pane shows, filtered and sorted.
    pub fn pane_groups(&self) -> Vec<Group> {
        let Some(live) = &self.live else {
            return Vec::new();
        };
        let Ok(services) = &live.services else {
            return Vec::new();
        };
        let reports = match &live.health {
            Ok(Some(reports)) => reports.as_slice(),
            _ => &[],
        };
        let none = Overrides::default();
        let overrides = live.overrides.as_ref().unwrap_or(&none);
        let groups = lvs::rows(services, &self.directors, &self.servers, reports, overrides);
        lvs::view(groups, &Filter::parse(&self.pane.filter), self.pane.sort)
    }

    fn pane_rows(&self) -> Vec<Row> {
        self.pane_groups()
            .into_iter()
            .flat_map(|group| group.rows)
            .collect()
    }

    /// The row the selection is on, among `rows`.
    fn selected_at(&self, rows: &[Row]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        let at = self
            .pane
            .selected
            .as_ref()
            .and_then(|key| rows.iter().position(|row| row.key() == *key));
        Some(at.unwrap_or(0))
    }

    /// The server whose last checks the pane shows: the selected one, while
    /// the pane has the keys.
    pub fn pane_checks_of(&self) -> Option<Target> {
        if self.tab != Tab::Lvs || !self.pane.focused {
            return None;
        }
        let rows = self.pane_rows();
        let row = &rows[self.selected_at(&rows)?];
        Some(Target {
            director: row.director.clone(),
            server: row.server.clone()?,
        })
    }

    /// The key of the row selected, as drawn.
    pub fn pane_selected(&self, groups: &[Group]) -> Option<RowKey> {
        let rows: Vec<Row> = groups.iter().flat_map(|g| g.rows.clone()).collect();
        self.selected_at(&rows).map(|at| rows[at].key())
    }

    /// Runs `command` in the pane; `false` when the pane has nothing to do
    /// with it.
    pub(super) fn pane_command(&mut self, command: Command, page: usize) -> Option<Vec<Effect>> {
        let step = |by: isize| Some(by);
        let by = match command {
            Command::MoveUp => step(-1),
            Command::MoveDown => step(1),
            Command::PageUp => step(-(page as isize)),
            Command::PageDown => step(page as isize),
            Command::BufferTop => step(isize::MIN),
            Command::BufferBottom => step(isize::MAX),
            _ => None,
        };
        if let Some(by) = by {
            self.move_in_pane(by);
            return Some(Vec::new());
        }
        match command {
            Command::ToggleMark => self.toggle_mark(),
            Command::LeavePane if !self.pane.filter.is_empty() => self.pane.filter.clear(),
            Command::LeavePane => self.pane.focused = false,
            _ => return None,
        }
        Some(Vec::new())
    }

    /// Commands of the pane that work from the palette too.
    pub(super) fn pane_action(&mut self, command: Command) {
        if self.tab != Tab::Lvs {
            let key = self.keymap.keys_for(Command::TabLvs).unwrap_or_default();
            self.warn(&format!("the LB Layer4 tab ({key}) has the servers"));
            return;
        }
        match command {
            Command::FocusPane => self.pane.focused = !self.pane.focused,
            Command::Filter => {
                self.pane.focused = true;
                self.prompt(Prompt::Filter, self.pane.filter.clone());
            }
            Command::NextSort => self.pane.sort = self.pane.sort.next(),
            Command::Drain => self.ask_note(Some(Hold::Drain { deadline: None })),
            Command::Disable => self.ask_note(Some(Hold::Disable)),
            Command::Enable => self.ask_note(None),
            Command::SetWeight if self.targets().is_some() => {
                self.prompt(Prompt::Weight, String::new());
            }
            _ => {}
        }
    }

    fn move_in_pane(&mut self, by: isize) {
        let rows = self.pane_rows();
        let Some(at) = self.selected_at(&rows) else {
            return;
        };
        let last = rows.len() as isize - 1;
        let to = (at as isize).saturating_add(by).clamp(0, last) as usize;
        self.pane.selected = Some(rows[to].key());
    }

    fn toggle_mark(&mut self) {
        let rows = self.pane_rows();
        let Some(at) = self.selected_at(&rows) else {
            return;
        };
        let key = rows[at].key();
        if !self.pane.marked.remove(&key) {
            self.pane.marked.insert(key);
        }
        // Down to the next, as htop and mc do, so that space marks a run.
        self.move_in_pane(1);
    }

    /// The servers an action is for: the marked ones shown, or the
    /// selected one; `None` (and a warning) when there is none, or one
    /// lvs.conf does not name.
    fn targets(&mut self) -> Option<Vec<Target>> {
        let rows = self.pane_rows();
        let mut chosen: Vec<&Row> = rows
            .iter()
            .filter(|row| self.pane.marked.contains(&row.key()))
            .collect();
        if chosen.is_empty() {
            chosen.extend(self.selected_at(&rows).map(|at| &rows[at]));
        }
        if chosen.is_empty() {
            self.warn("no server selected");
            return None;
        }
        let mut targets = Vec::new();
        for row in chosen {
            match &row.server {
                Some(server) if row.director != "-" => targets.push(Target {
                    director: row.director.clone(),
                    server: server.clone(),
                }),
                _ => {
                    self.warn(&format!(
                        "{} is not a server of lvs.conf: nothing to act on",
                        crate::tui::address::host_port(row.address, row.port)
                    ));
                    return None;
                }
            }
        }
        Some(targets)
    }

    fn ask_note(&mut self, hold: Option<Hold>) {
        if self.targets().is_some() {
            self.prompt(Prompt::Note(hold), String::new());
        }
    }

    /// The weight typed: on to the note.
    pub(super) fn weight_typed(&mut self, input: String) {
        match input.trim().parse::<u32>() {
            Ok(weight) => self.prompt(Prompt::Note(Some(Hold::Weight { weight })), String::new()),
            Err(_) => {
                self.warn(&format!("`{input}` is not a weight (a whole number)"));
                self.prompt(Prompt::Weight, input);
            }
        }
    }

    /// The note typed (empty: none): the change goes to the engine.
    pub(super) fn note_typed(&mut self, hold: Option<Hold>, input: &str) -> Vec<Effect> {
        if self.refuse_when_busy() {
            return Vec::new();
        }
        let Some(targets) = self.targets() else {
            return Vec::new();
        };
        let note = Some(input.trim().to_owned()).filter(|note| !note.is_empty());
        self.busy = Some(Busy::Operating);
        vec![Effect::Engine(Request::Operate {
            targets,
            hold,
            note,
        })]
    }

    /// What the engine did: the done ones noted, the refused ones shown whole.
    pub(super) fn operated(&mut self, outcomes: Vec<Operated>, hold: Option<Hold>) -> Vec<Effect> {
        self.busy = None;
        let done = match hold {
            Some(Hold::Drain { .. }) => "drained".to_owned(),
            Some(Hold::Disable) => "disabled".to_owned(),
            Some(Hold::Weight { weight }) => format!("at weight {weight}"),
            None => "enabled".to_owned(),
        };
        let (ok, failed): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|(_, r)| r.is_ok());
        if !ok.is_empty() {
            let names: Vec<String> = ok.iter().map(|(t, _)| t.to_string()).collect();
            self.note(&format!("{} {done}", names.join(", ")));
            self.pane.marked.clear();
        }
        if !failed.is_empty() {
            let text = failed
                .iter()
                .map(|(target, result)| {
                    let error = result.as_ref().err().cloned().unwrap_or_default();
                    format!("{target}: {error}")
                })
                .collect::<Vec<_>>()
                .join("\n\n");
            self.overlay = Some(Overlay::Message {
                title: format!("Not {done}"),
                text,
                scroll: 0,
            });
        }
        self.refresh_live()
    }
}
