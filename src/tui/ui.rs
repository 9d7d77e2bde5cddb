//! Drawing: pure functions of the state. Every size works, down to one cell:
//! parts that do not fit are left out, never squeezed into a panic.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, Busy, Mode, Tab};
use super::editor::{self, Decorations};
use super::keymap::Command;
use super::overlay;
use super::tabs;
use super::theme::Styles;
use crate::config::{ConfigFile, Diagnostic, Severity};

/// The live pane is shown when the screen is at least this wide.
const LIVE_MIN_WIDTH: u16 = 60;
/// The problem list is shown when the screen is at least this high.
const PROBLEMS_MIN_HEIGHT: u16 = 14;
const PROBLEM_ROWS: u16 = 4;

struct Areas {
    tabs: Rect,
    editor: Rect,
    live: Rect,
    problems: Rect,
    /// Empty unless the events pane is shown.
    events: Rect,
    state: Rect,
    hint: Rect,
}

fn layout(area: Rect, problems: usize, events_shown: bool) -> Areas {
    let [tabs, middle, state, hint] = Layout::vertical([
        Constraint::Length(u16::from(area.height >= 3)),
        Constraint::Fill(1),
        Constraint::Length(u16::from(area.height >= 2)),
        Constraint::Length(u16::from(area.height >= 10)),
    ])
    .areas(area);
    let events_height = if events_shown {
        tabs::events::height(middle.height)
    } else {
        0
    };
    let [middle, events] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(events_height)]).areas(middle);
    // A title row, and a row per problem up to a few.
    let problems_height = if area.height >= PROBLEMS_MIN_HEIGHT {
        problems.min(PROBLEM_ROWS as usize) as u16 + 1
    } else {
        0
    };
    let [body, problems] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(problems_height)]).areas(middle);
    let live_width = if area.width >= LIVE_MIN_WIDTH {
        area.width * 38 / 100
    } else {
        0
    };
    let [editor, live] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(live_width)]).areas(body);
    Areas {
        tabs,
        editor,
        live,
        problems,
        events,
        state,
        hint,
    }
}

/// The editor's text window (width, height) on a screen of `size`, for moving
/// the view along with the cursor.
pub fn editor_size(size: (u16, u16), problems: usize, events_shown: bool) -> (usize, usize) {
    let editor = layout(Rect::new(0, 0, size.0, size.1), problems, events_shown).editor;
    // Less the title row.
    (
        editor.width as usize,
        editor.height.saturating_sub(1) as usize,
    )
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let areas = layout(area, app.diagnostics.len(), app.events_shown);
    draw_tabs(frame, areas.tabs, app);
    match app.tab.file() {
        Some(file) => {
            draw_editor(frame, areas.editor, app, file);
            draw_live(frame, areas.live, app);
            draw_problems(frame, areas.problems, app, file);
        }
        None => {
            let setup = areas.editor.union(areas.live).union(areas.problems);
            tabs::setup::draw(frame, setup, app);
        }
    }
    tabs::events::draw(frame, areas.events, app);
    draw_state(frame, areas.state, app);
    draw_hint(frame, areas.hint, app);
    if let Some(overlay) = &app.overlay {
        overlay::draw(frame, area, app, overlay);
    }
}

pub(super) fn block<'a>(title: &'a str, borders: Borders, app: &App) -> Block<'a> {
    let styles = &app.theme.styles;
    Block::new()
        .borders(borders)
        .border_set(app.theme.border)
        .border_style(styles.border)
        .title(Span::styled(title, styles.title))
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App) {
    let styles = &app.theme.styles;
    let mut spans = Vec::new();
    for (index, tab) in Tab::ALL.iter().enumerate() {
        let style = if *tab == app.tab {
            styles.tab_active
        } else {
            styles.tab
        };
        spans.push(Span::styled(
            format!(" F{} {} ", index + 1, tab.title()),
            style,
        ));
        spans.push(Span::styled("|", styles.border));
    }
    if let Some(sandbox) = &app.settings.sandbox {
        spans.push(Span::styled(format!(" {}", sandbox.banner), styles.warning));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn file_diagnostics(app: &App, file: ConfigFile) -> Vec<&Diagnostic> {
    app.diagnostics.iter().filter(|d| d.file == file).collect()
}

fn draw_editor(frame: &mut Frame, area: Rect, app: &App, file: ConfigFile) {
    let unsaved = if app.unsaved().contains(&file) {
        " (edited)"
    } else {
        ""
    };
    let title = format!("{}{unsaved}", file.file_name());
    let outer = block(&title, Borders::TOP, app);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let diagnostics = file_diagnostics(app, file);
    let holds = if file == ConfigFile::Lvs {
        held_lines(app)
    } else {
        Vec::new()
    };
    let decorations = Decorations {
        diagnostics: &diagnostics,
        holds: &holds,
        editing: app.mode == Mode::Edit && app.overlay.is_none(),
    };
    editor::render(
        frame,
        inner,
        app.editor(file),
        &decorations,
        &app.theme.styles,
    );
}

/// The lines of lvs.conf's servers that an override holds, with its mark
/// (`D`, `X`, `W`): the file says one thing, the kernel runs another.
fn held_lines(app: &App) -> Vec<(u32, char)> {
    let Some(Ok(overrides)) = app.live.as_ref().map(|live| &live.overrides) else {
        return Vec::new();
    };
    overrides
        .servers
        .iter()
        .filter_map(|held| {
            let line = app
                .servers
                .iter()
                .find(|s| s.director == held.director && s.server == held.server)?
                .line;
            let mark = tabs::lvs::hold_mark(held.hold).chars().next()?;
            Some((line, mark))
        })
        .collect()
}

fn draw_problems(frame: &mut Frame, area: Rect, app: &App, file: ConfigFile) {
    if area.height == 0 {
        return;
    }
    let styles = &app.theme.styles;
    let here = file_diagnostics(app, file);
    let elsewhere = app.diagnostics.len() - here.len();
    let title = match (here.len(), elsewhere) {
        (0, 0) if app.checking() => "Problems: checking...".to_owned(),
        (0, 0) => "Problems: none".to_owned(),
        (n, 0) => format!("Problems: {n}"),
        (n, m) => format!("Problems: {n} here, {m} in other files"),
    };
    let outer = block(&title, Borders::TOP, app);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let lines: Vec<Line> = here
        .iter()
        .chain(
            app.diagnostics
                .iter()
                .filter(|d| d.file != file)
                .collect::<Vec<_>>()
                .iter(),
        )
        .take(inner.height as usize)
        .map(|d| diagnostic_line(d, styles))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn diagnostic_line<'a>(d: &Diagnostic, styles: &Styles) -> Line<'a> {
    let (label, style) = match d.severity {
        Severity::Error => ("error", styles.error),
        Severity::Warning => ("warning", styles.warning),
    };
    let hint = d
        .hint
        .as_ref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    Line::from(vec![
        Span::styled(
            format!("{}:{}:{} ", d.file.file_name(), d.line, d.col),
            styles.line_number,
        ),
        Span::styled(label, style),
        Span::raw(format!(": {}{hint}", d.message)),
    ])
}

fn draw_live(frame: &mut Frame, area: Rect, app: &App) {
    if area.width == 0 {
        return;
    }
    let styles = &app.theme.styles;
    let title = match app.tab {
        Tab::Network => "Kernel: links".to_owned(),
        Tab::Flows => "Kernel: flow hits".to_owned(),
        _ if app.rates_shown => "Kernel: IPVS rates".to_owned(),
        _ => lvs_title(app),
    };
    let outer = block(&title, Borders::TOP | Borders::LEFT, app);
    let outer = if app.pane_focused() {
        outer.border_style(styles.key)
    } else {
        outer
    };
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let width = usize::from(inner.width);
    let mut scroll = 0;
    let mut text = match &app.live {
        None => Text::styled("reading the kernel...", styles.comment),
        Some(live) => match app.tab {
            Tab::Network => tabs::network::links_text(live, styles, width),
            Tab::Flows => tabs::flows::flows_text(live.flows.as_deref(), styles),
            _ if app.rates_shown => {
                tabs::rates::rates_text(live, app, (width, usize::from(inner.height)))
            }
            _ => {
                let groups = app.pane_groups();
                let selected = app.pane_selected(&groups);
                let selection = tabs::lvs::Selection {
                    selected: selected.as_ref(),
                    marked: &app.pane.marked,
                    focused: app.pane_focused(),
                };
                let (text, line) =
                    tabs::lvs::services_text(live, app, &groups, &selection, styles, width);
                // The selected row in view, with a row below it when it can.
                let height = usize::from(inner.height);
                if let Some(line) = line
                    && line + 2 > height
                {
                    scroll = (line + 2 - height).min(text.lines.len().saturating_sub(1));
                }
                text
            }
        },
    };
    // A sandbox on a kernel that cannot run the example says, on the first
    // screen, where it can.
    let elsewhere = app
        .settings
        .sandbox
        .as_ref()
        .and_then(|s| s.elsewhere.as_ref());
    if let (Tab::Network, Some(elsewhere)) = (app.tab, elsewhere) {
        let mut lines = vec![
            Line::styled(elsewhere.clone(), styles.warning),
            Line::raw(""),
        ];
        lines.append(&mut text.lines);
        text = Text::from(lines);
    }
    let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        inner,
    );
}

/// The LB Layer4 pane's title: its sort and its filter.
fn lvs_title(app: &App) -> String {
    let filter = match app.pane.filter.trim() {
        "" => String::new(),
        text => format!(" /{text}"),
    };
    format!("Kernel: IPVS by {}{filter}", app.pane.sort.label())
}

fn draw_state(frame: &mut Frame, area: Rect, app: &App) {
    let styles = &app.theme.styles;
    let mode = match (app.mode, app.tab.file()) {
        _ if app.pane_focused() => " PANE ",
        (Mode::Edit, Some(_)) => " EDIT ",
        _ => " VIEW ",
    };
    let (unsaved, unapplied) = (app.unsaved(), app.unapplied());
    let short = |files: &[ConfigFile]| {
        files
            .iter()
            .map(|f| f.file_name().trim_end_matches(".conf"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let version = match app.saved_version {
        0 => String::new(),
        n => format!(" v{n}"),
    };
    let saved = if unsaved.is_empty() {
        Span::styled(format!("{version} saved"), styles.ok)
    } else {
        Span::styled(
            format!("{version} unsaved:{}", short(unsaved)),
            styles.warning,
        )
    };
    let running = match (&app.running, unapplied.is_empty()) {
        (None, _) => Span::styled(" never applied", styles.warning),
        (Some(_), true) => Span::styled(" running", styles.ok),
        (Some(_), false) => {
            Span::styled(format!(" unapplied:{}", short(unapplied)), styles.warning)
        }
    };
    let (errors, warnings) = (app.count(Severity::Error), app.count(Severity::Warning));
    let check = if app.checking() {
        Span::styled(" checking...", styles.comment)
    } else if errors > 0 {
        Span::styled(format!(" {errors} err {warnings} warn"), styles.error)
    } else if warnings > 0 {
        Span::styled(format!(" valid, {warnings} warn"), styles.warning)
    } else {
        Span::styled(" valid", styles.ok)
    };
    let mut spans = vec![
        Span::styled(mode, styles.tab_active),
        saved,
        Span::styled(" |", styles.border),
        running,
        Span::styled(" |", styles.border),
        check,
    ];
    if let Some(left) = app.confirm_left {
        spans.push(Span::styled(" |", styles.border));
        spans.push(Span::styled(format!(" CONFIRM {left}s"), styles.error));
    }
    if let Some(busy) = app.busy {
        let doing = match busy {
            Busy::Planning => "planning...",
            Busy::Applying => "applying...",
            Busy::Saving => "saving...",
            Busy::Reloading => "reloading...",
            Busy::Restoring => "restoring...",
            Busy::ReadingImport => "reading the import...",
            Busy::Importing => "importing...",
            Busy::Exporting => "exporting...",
            Busy::ComparingPeer => "comparing with the peer...",
            Busy::SyncingPeer => "syncing to the peer...",
            Busy::Operating => "changing servers...",
        };
        spans.push(Span::styled(format!(" | {doing}"), styles.warning));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(styles.status), area);
}

fn draw_hint(frame: &mut Frame, area: Rect, app: &App) {
    let styles = &app.theme.styles;
    let line = match &app.notice {
        Some(notice) => Line::styled(
            notice.text.clone(),
            if notice.is_error {
                styles.error
            } else {
                styles.ok
            },
        ),
        None => {
            let editing = app.mode == Mode::Edit && app.tab.file().is_some();
            // The key to all keys first, so that it shows on the narrowest screen.
            let commands: &[Command] = if app.tab == Tab::Setup {
                &[
                    Command::Help,
                    Command::ShowDiff,
                    Command::DiffEdited,
                    Command::RestoreVersion,
                    Command::Export,
                    Command::Import,
                    Command::NextTheme,
                ]
            } else if editing {
                &[
                    Command::StopEditing,
                    Command::Save,
                    Command::Apply,
                    Command::NextProblem,
                    Command::Undo,
                ]
            } else {
                &[
                    Command::Help,
                    Command::Edit,
                    Command::Apply,
                    Command::Save,
                    Command::Palette,
                    Command::Quit,
                ]
            };
            let pane = app.pane_focused();
            let commands: &[Command] = if pane {
                &[
                    Command::Help,
                    Command::FocusPane,
                    Command::ToggleMark,
                    Command::Drain,
                    Command::Enable,
                    Command::Filter,
                    Command::NextSort,
                ]
            } else {
                commands
            };
            let mut spans = Vec::new();
            let mut room = area.width as usize;
            for &command in commands {
                let hint = if pane {
                    app.keymap.pane_hint(command)
                } else {
                    app.keymap.hint(command, editing)
                };
                let Some((key, desc)) = hint else {
                    continue;
                };
                // A desc's words before its parenthesis: `Apply to the kernel`.
                let what = desc.split(" (").next().unwrap_or(desc);
                let width = key.chars().count() + what.chars().count() + 3;
                if width > room {
                    break;
                }
                room -= width;
                spans.push(Span::styled(key, styles.key));
                spans.push(Span::raw(format!(" {what}  ")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}
