//! Drawing: pure functions of the state. Every size works, down to one cell:
//! parts that do not fit are left out, never squeezed into a panic.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Busy, Choice, Mode, Overlay, Prompt, Question, Tab, palette_entries};
use super::editor::{self, Decorations};
use super::engine::{FlowCounter, Live};
use super::keymap::{Command, Section, keys_text};
use super::theme::Styles;
use crate::config::{ConfigFile, Diagnostic, Severity};
use crate::health::publish::ServerReport;
use crate::health::state::Health;
use crate::kernel::{LinkStatus, ServiceStatus};
use crate::store::VersionMeta;
use crate::store::settings::CONFIRM_TIMEOUTS;

/// The live pane is shown when the screen is at least this wide.
const LIVE_MIN_WIDTH: u16 = 60;
/// The problem list is shown when the screen is at least this high.
const PROBLEMS_MIN_HEIGHT: u16 = 14;
const PROBLEM_ROWS: u16 = 4;
/// Versions of the history the Setup tab keeps in view before the details
/// around it.
const HISTORY_MIN_ROWS: usize = 3;

struct Areas {
    tabs: Rect,
    editor: Rect,
    live: Rect,
    problems: Rect,
    state: Rect,
    hint: Rect,
}

fn layout(area: Rect, problems: usize) -> Areas {
    let [tabs, middle, state, hint] = Layout::vertical([
        Constraint::Length(u16::from(area.height >= 3)),
        Constraint::Fill(1),
        Constraint::Length(u16::from(area.height >= 2)),
        Constraint::Length(u16::from(area.height >= 10)),
    ])
    .areas(area);
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
        state,
        hint,
    }
}

/// The editor's text window (width, height) on a screen of `size`, for moving
/// the view along with the cursor.
pub fn editor_size(size: (u16, u16), problems: usize) -> (usize, usize) {
    let editor = layout(Rect::new(0, 0, size.0, size.1), problems).editor;
    // Less the title row.
    (
        editor.width as usize,
        editor.height.saturating_sub(1) as usize,
    )
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let styles = &app.theme.styles;
    let areas = layout(area, app.diagnostics.len());
    draw_tabs(frame, areas.tabs, app);
    match app.tab.file() {
        Some(file) => {
            draw_editor(frame, areas.editor, app, file);
            draw_live(frame, areas.live, app);
            draw_problems(frame, areas.problems, app, file);
        }
        None => {
            let setup = areas.editor.union(areas.live).union(areas.problems);
            draw_setup(frame, setup, app);
        }
    }
    draw_state(frame, areas.state, app);
    draw_hint(frame, areas.hint, app);
    if let Some(overlay) = &app.overlay {
        draw_overlay(frame, area, app, overlay, styles);
    }
}

fn block<'a>(title: &'a str, borders: Borders, app: &App) -> Block<'a> {
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
    let decorations = Decorations {
        diagnostics: &diagnostics,
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
        Tab::Network => "Kernel: links",
        Tab::Flows => "Kernel: flow hits",
        _ => "Kernel: IPVS",
    };
    let outer = block(title, Borders::TOP | Borders::LEFT, app);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let mut text = match &app.live {
        None => Text::styled("reading the kernel...", styles.comment),
        Some(live) => match app.tab {
            Tab::Network => links_text(live, styles),
            Tab::Flows => flows_text(live.flows.as_deref(), styles),
            _ => services_text(live, app, styles),
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
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), inner);
}

fn state_style(state: &str, styles: &Styles) -> Style {
    match state {
        "up" | "active" | "unknown" => styles.ok,
        _ => styles.warning,
    }
}

fn links_text<'a>(live: &Live, styles: &Styles) -> Text<'a> {
    let links = match &live.links {
        Ok(links) => links,
        Err(error) => return Text::styled(error.clone(), styles.error),
    };
    let mut lines = Vec::new();
    for link in links.iter().filter(|l| l.master.is_none()) {
        let state = link_state(link);
        let kind = match (&link.bond, &link.vlan) {
            (Some(bond), _) => format!("bond {}", bond.mode),
            (_, Some(vlan)) => format!("vlan {} on {}", vlan.id, vlan.parent),
            _ if link.kind.is_empty() => "ethernet".to_owned(),
            _ => link.kind.clone(),
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<8} ", link.name), styles.name),
            Span::styled(format!("{state:<5}"), state_style(state, styles)),
            Span::raw(format!(" {kind}")),
        ]));
        for address in &link.addresses {
            lines.push(Line::styled(format!("  {address}"), styles.address));
        }
        let slaves = links
            .iter()
            .filter(|l| l.master.as_deref() == Some(link.name.as_str()));
        for slave in slaves {
            let status = link
                .bond
                .as_ref()
                .and_then(|bond| bond.slaves.iter().find(|s| s.name == slave.name));
            let (role, mii) = status
                .map(|s| (s.state.as_str(), s.mii_status.as_str()))
                .unwrap_or(("slave", link_state(slave)));
            lines.push(Line::from(vec![
                Span::raw(format!("  `-{:<6} ", slave.name)),
                Span::styled(format!("{role:<7}"), state_style(role, styles)),
                Span::styled(format!(" mii {mii}"), state_style(mii, styles)),
            ]));
        }
    }
    if lines.is_empty() {
        lines.push(Line::raw("no links"));
    }
    Text::from(lines)
}

fn link_state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}

fn flows_text<'a>(flows: Option<&[FlowCounter]>, styles: &Styles) -> Text<'a> {
    let Some(flows) = flows else {
        return Text::styled(
            "flows not available yet: the console shows hit counters once the \
             firewall backend programs flows",
            styles.comment,
        );
    };
    if flows.is_empty() {
        return Text::raw("no flows in the kernel");
    }
    let mut lines = Vec::new();
    let mut previous: Option<&str> = None;
    for counter in flows {
        if previous != Some(counter.flow.as_str()) {
            lines.push(Line::styled(counter.flow.clone(), styles.name));
            previous = Some(&counter.flow);
        }
        lines.push(Line::from(vec![
            Span::raw(format!("  {} ", counter.rule)),
            Span::styled(
                format!("{} pkts {} bytes", counter.packets, counter.bytes),
                styles.number,
            ),
        ]));
    }
    Text::from(lines)
}

fn services_text<'a>(live: &Live, app: &App, styles: &Styles) -> Text<'a> {
    let services: &[ServiceStatus] = match &live.services {
        Ok(services) => services,
        Err(error) => {
            let mut text = Text::styled(error.clone(), styles.error);
            // In a sandbox on such a kernel: where the example does run.
            if let Some(elsewhere) = app
                .settings
                .sandbox
                .as_ref()
                .and_then(|s| s.elsewhere.as_ref())
            {
                text.push_line(Line::raw(""));
                text.push_line(Line::styled(elsewhere.clone(), styles.warning));
            }
            return text;
        }
    };
    let mut lines = Vec::new();
    let reports: &[ServerReport] = match &live.health {
        Ok(Some(reports)) => reports,
        Ok(None) => {
            lines.push(Line::styled(
                "no daemon: health not checked",
                styles.warning,
            ));
            &[]
        }
        Err(error) => {
            lines.push(Line::styled(error.clone(), styles.error));
            &[]
        }
    };
    if services.is_empty() {
        lines.push(Line::raw("no virtual services"));
    }
    for service in services {
        let director = app.directors.get(&service.key).map_or("-", String::as_str);
        lines.push(Line::from(vec![
            Span::styled(format!("{director} "), styles.name),
            Span::styled(service.key.to_string(), styles.address),
        ]));
        lines.push(Line::raw(format!(
            "  {} {} conn/s",
            service.scheduler, service.stats.connections_per_second
        )));
        let of_director: Vec<&ServerReport> =
            reports.iter().filter(|r| r.director == director).collect();
        for dest in &service.destinations {
            let report = of_director
                .iter()
                .find(|r| r.address == dest.address && r.port == dest.port);
            let rotation = if dest.weight == 0 { " (out)" } else { "" };
            lines.push(Line::from(vec![
                health_mark(report.copied(), styles),
                Span::styled(format!("{}:{}", dest.address, dest.port), styles.address),
                Span::raw(format!(
                    " w{}{rotation} {}/{} {}c/s",
                    dest.weight,
                    dest.active_connections,
                    dest.inactive_connections,
                    dest.stats.connections_per_second
                )),
            ]));
        }
        // The daemon takes a down server out of IPVS, and keeps a sorry
        // server out until every other one is down: listed all the same.
        let absent = of_director.iter().filter(|r| {
            !service
                .destinations
                .iter()
                .any(|d| d.address == r.address && d.port == r.port)
        });
        for report in absent {
            let why = if report.sorry {
                " standby"
            } else {
                " not in IPVS"
            };
            lines.push(Line::from(vec![
                health_mark(Some(report), styles),
                Span::styled(
                    format!("{}:{}", report.address, report.port),
                    styles.address,
                ),
                Span::styled(why, styles.comment),
            ]));
        }
    }
    Text::from(lines)
}

/// What the daemon says of a real server, ahead of its address: `>` when it
/// says nothing.
fn health_mark<'a>(report: Option<&ServerReport>, styles: &Styles) -> Span<'a> {
    match report {
        None => Span::raw("  > "),
        Some(report) if report.sorry => Span::styled("  sorry ", styles.warning),
        Some(report) => match report.health {
            Health::Up => Span::styled("  up ", styles.ok),
            Health::Down => Span::styled("  down ", styles.error),
        },
    }
}

fn draw_setup(frame: &mut Frame, area: Rect, app: &App) {
    let styles = &app.theme.styles;
    let outer = block("Setup", Borders::TOP, app);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if inner.width == 0 {
        return;
    }
    let rows = |lines: &[Line]| -> usize {
        lines
            .iter()
            .map(|line| line.width().div_ceil(inner.width as usize).max(1))
            .sum()
    };
    let heading = |text: &str| Line::styled(text.to_owned(), styles.title);
    let field = |name: &str, value: String, style: Style| {
        Line::from(vec![
            Span::raw(format!("  {name:<16}")),
            Span::styled(value, style),
        ])
    };
    let mut configuration = vec![
        heading("Configuration"),
        field("config dir", app.settings.config_dir.clone(), styles.text),
        field("state dir", app.settings.state_dir.clone(), styles.text),
    ];
    let dirs_only = configuration.len();
    configuration.extend(file_lines(app, &field));
    configuration.push(Line::raw(""));
    let (history_top, versions) = history_lines(app, styles);
    let mut below = vec![Line::raw("")];
    below.extend(settings_lines(app, &heading, &field));
    below.push(Line::raw(""));
    below.extend(system_lines(app, &heading, &field));
    if let Some(sandbox) = &app.settings.sandbox {
        below.push(Line::raw(""));
        below.push(heading("Sandbox"));
        below.extend(sandbox.details.iter().map(|d| Line::raw(format!("  {d}"))));
    }
    // On a short screen the blank lines go first, then the files' states
    // (the state line has them too), so that some history stays in view.
    let height = inner.height as usize;
    let reserved = rows(&history_top) + versions.len().min(HISTORY_MIN_ROWS);
    let fits = |configuration: &[Line], below: &[Line]| {
        rows(configuration) + reserved + rows(below) <= height
    };
    if !fits(&configuration, &below) {
        configuration.retain(|line| line.width() > 0);
        below.retain(|line| line.width() > 0);
    }
    if !fits(&configuration, &below) {
        configuration.truncate(dirs_only);
    }
    let top_rows = rows(&configuration) + rows(&history_top);
    let below_rows = rows(&below);
    // The history keeps its reserved rows; what is below it is cut instead.
    let list_rows = versions.len().min(
        height
            .saturating_sub(top_rows + below_rows)
            .max(versions.len().min(HISTORY_MIN_ROWS)),
    );
    let top = Rect {
        height: top_rows.min(height) as u16,
        ..inner
    };
    let list = Rect {
        y: top.bottom(),
        height: list_rows.min(height - top.height as usize) as u16,
        ..inner
    };
    let bottom = Rect {
        y: list.bottom(),
        height: inner.bottom() - list.bottom(),
        ..inner
    };
    configuration.extend(history_top);
    frame.render_widget(
        Paragraph::new(configuration).wrap(Wrap { trim: false }),
        top,
    );
    // The selected version stays in view; rows are cut at the edge, not wrapped.
    let shown = list.height as usize;
    let selected = app.selected().map_or(0, |(at, _)| at);
    let first = (selected + 1).saturating_sub(shown);
    frame.render_widget(
        Paragraph::new(
            versions
                .into_iter()
                .skip(first)
                .take(shown)
                .collect::<Vec<_>>(),
        ),
        list,
    );
    frame.render_widget(Paragraph::new(below).wrap(Wrap { trim: false }), bottom);
}

type Field<'f> = dyn Fn(&str, String, Style) -> Line<'static> + 'f;

fn file_lines(app: &App, field: &Field) -> Vec<Line<'static>> {
    let styles = &app.theme.styles;
    let (unsaved, unapplied) = (app.unsaved(), app.unapplied());
    ConfigFile::ALL
        .into_iter()
        .map(|file| {
            let lines_count = app.editor(file).lines().len();
            let saved = if unsaved.contains(&file) {
                "edited, unsaved"
            } else {
                "saved"
            };
            let running = if unapplied.contains(&file) {
                "differs from running"
            } else {
                "running"
            };
            field(
                file.file_name(),
                format!("{lines_count} lines: {saved}, {running}"),
                if unsaved.contains(&file) || unapplied.contains(&file) {
                    styles.warning
                } else {
                    styles.ok
                },
            )
        })
        .collect()
}

/// The history's heading and notes, and one row per version, newest first.
fn history_lines(app: &App, styles: &Styles) -> (Vec<Line<'static>>, Vec<Line<'static>>) {
    let history = match &app.history {
        None => {
            return (
                vec![Line::styled("History", styles.title)],
                vec![Line::styled("  reading...", styles.comment)],
            );
        }
        Some(Err(error)) => {
            return (
                vec![Line::styled("History", styles.title)],
                vec![Line::styled(format!("  {error}"), styles.error)],
            );
        }
        Some(Ok(history)) => history,
    };
    let mut top = vec![Line::styled(
        match history.versions.len() {
            0 => "History".to_owned(),
            1 => "History: 1 version".to_owned(),
            n => format!("History: {n} versions, newest first"),
        },
        styles.title,
    )];
    let newest = history.versions.first().map_or(0, |meta| meta.number);
    if newest > app.saved_version {
        let reload = app.keymap.keys_for(Command::Reload).unwrap_or_default();
        top.push(Line::styled(
            format!(
                "  version {newest} was saved since these files were loaded (version {}); \
                 {reload} reloads",
                app.saved_version
            ),
            styles.warning,
        ));
    }
    if history.versions.is_empty() {
        let save = app.keymap.keys_for(Command::Save).unwrap_or_default();
        return (
            top,
            vec![Line::styled(
                format!("  nothing saved yet: Save ({save}) makes version 1"),
                styles.comment,
            )],
        );
    }
    let selected = app.selected().map(|(_, meta)| meta.number);
    let rows = history
        .versions
        .iter()
        .map(|meta| version_row(meta, newest, history.running, selected, styles))
        .collect();
    (top, rows)
}

fn version_row(
    meta: &VersionMeta,
    saved: u64,
    running: Option<u64>,
    selected: Option<u64>,
    styles: &Styles,
) -> Line<'static> {
    let chosen = selected == Some(meta.number);
    // `2025-11-21T13:20:05Z` to the minute.
    let time = meta.time.replacen('T', " ", 1);
    let time = time.get(..16).unwrap_or(&time);
    let user: String = meta.user.chars().take(10).collect();
    let mut marks = String::new();
    if meta.number == saved {
        marks.push_str("[saved] ");
    }
    if running == Some(meta.number) {
        marks.push_str("[running] ");
    }
    let line = Line::from(vec![
        Span::raw(format!(
            "{} {:>4}  {time}  {user:<10} {:<9} ",
            if chosen { ">" } else { " " },
            meta.number,
            meta.origin.name()
        )),
        // On the selected row the row's own style, which a colour would fight.
        Span::styled(marks, if chosen { Style::new() } else { styles.ok }),
        Span::raw(meta.summary.clone()),
    ]);
    if chosen {
        line.style(styles.tab_active)
    } else {
        line
    }
}

fn settings_lines(
    app: &App,
    heading: &dyn Fn(&str) -> Line<'static>,
    field: &Field,
) -> Vec<Line<'static>> {
    let styles = &app.theme.styles;
    let key = |command| app.keymap.keys_for(command).unwrap_or_default();
    let choice = |name: &str, choice: &Choice, note: &str, command| {
        let mut line = field(name, format!("{}{note}", choice.name), styles.text);
        line.push_span(Span::styled(
            format!("  {}: next of {}", key(command), choice.choices.join(", ")),
            styles.comment,
        ));
        line
    };
    let mono = if app.settings.monochrome {
        " (no colour)"
    } else {
        ""
    };
    let mut timeout = field(
        "confirm timeout",
        format!("{} s", app.settings.stored.confirm_timeout),
        styles.text,
    );
    timeout.push_span(Span::styled(
        format!(
            "  {}: change ({} to {} s)",
            key(Command::SetConfirmTimeout),
            CONFIRM_TIMEOUTS.start(),
            CONFIRM_TIMEOUTS.end()
        ),
        styles.comment,
    ));
    vec![
        heading("Settings (lbconsole.toml)"),
        choice("theme", &app.settings.theme, mono, Command::NextTheme),
        choice("keymap", &app.settings.keymap, "", Command::NextKeymap),
        timeout,
    ]
}

fn system_lines(
    app: &App,
    heading: &dyn Fn(&str) -> Line<'static>,
    field: &Field,
) -> Vec<Line<'static>> {
    let styles = &app.theme.styles;
    let mut lines = vec![heading("System")];
    let Some(facts) = &app.facts else {
        lines.push(Line::styled("  reading...", styles.comment));
        return lines;
    };
    lines.push(field("hostname", facts.hostname.clone(), styles.text));
    lines.push(field("kernel", facts.kernel.clone(), styles.text));
    for (name, fact) in [
        ("IPVS", &facts.ipvs),
        ("bonding", &facts.bonding),
        ("nftables", &facts.nftables),
    ] {
        lines.push(match fact {
            Ok(()) => field(name, "available".to_owned(), styles.ok),
            Err(why) => field(name, why.clone(), styles.warning),
        });
    }
    match app.live.as_ref().map(|live| &live.health) {
        None => lines.push(field("daemon", "reading...".to_owned(), styles.comment)),
        Some(Ok(Some(servers))) => {
            let checked = servers.iter().filter(|s| s.checked).count();
            let down = servers
                .iter()
                .filter(|s| s.checked && s.health == Health::Down)
                .count();
            lines.push(field(
                "daemon",
                format!("running: {checked} servers checked, {down} down"),
                if down > 0 { styles.warning } else { styles.ok },
            ));
        }
        Some(Ok(None)) => {
            lines.push(field(
                "daemon",
                "not running: no health checks; down servers stay in IPVS".to_owned(),
                styles.warning,
            ));
            lines.push(field(
                "",
                "start `lbconsole daemon` or `systemctl start lbconsole`".to_owned(),
                styles.comment,
            ));
        }
        Some(Err(error)) => lines.push(field("daemon", error.clone(), styles.error)),
    }
    lines
}

fn draw_state(frame: &mut Frame, area: Rect, app: &App) {
    let styles = &app.theme.styles;
    let mode = match (app.mode, app.tab.file()) {
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
            Busy::Importing => "importing...",
            Busy::Exporting => "exporting...",
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
            let commands: &[(Command, &str)] = if app.tab == Tab::Setup {
                &[
                    (Command::ShowDiff, "diff"),
                    (Command::DiffEdited, "diff edited"),
                    (Command::RestoreVersion, "restore"),
                    (Command::Export, "export"),
                    (Command::Import, "import"),
                    (Command::NextTheme, "theme"),
                    (Command::Help, "keys"),
                ]
            } else if editing {
                &[
                    (Command::StopEditing, "stop typing"),
                    (Command::Save, "save"),
                    (Command::Apply, "apply"),
                    (Command::NextProblem, "next problem"),
                    (Command::Undo, "undo"),
                ]
            } else {
                &[
                    (Command::Edit, "type"),
                    (Command::Apply, "apply"),
                    (Command::Save, "save"),
                    (Command::Help, "keys"),
                    (Command::Palette, "commands"),
                    (Command::Quit, "quit"),
                ]
            };
            let mut spans = Vec::new();
            for (command, what) in commands {
                let key = if editing {
                    edit_key(app, *command)
                } else {
                    app.keymap.keys_for(*command)
                };
                if let Some(key) = key {
                    spans.push(Span::styled(key, styles.key));
                    spans.push(Span::raw(format!(" {what}  ")));
                }
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The key that runs `command` while typing: a global or edit binding.
fn edit_key(app: &App, command: Command) -> Option<String> {
    [Section::Edit, Section::Global]
        .into_iter()
        .flat_map(|section| app.keymap.section(section))
        .find(|b| b.run == command && !b.on.is_empty())
        .map(|b| b.on[0].to_string())
}

/// A box of at most `width`×`height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn draw_overlay(frame: &mut Frame, area: Rect, app: &App, overlay: &Overlay, styles: &Styles) {
    let key = |text: &str| Span::styled(text.to_owned(), styles.key);
    let close_or_scroll = Line::from(vec![
        key("Esc"),
        Span::raw(" close  "),
        key("up/down"),
        Span::raw(" scroll"),
    ]);
    let (title, body, footer, scroll, size): (String, Text, Line, u16, (u16, u16)) = match overlay {
        Overlay::Help { scroll } => (
            "Keys".to_owned(),
            help_text(app, styles),
            close_or_scroll.clone(),
            *scroll,
            (76, 40),
        ),
        Overlay::Palette { query, selected } => {
            let entries = palette_entries(&app.keymap, query);
            let mut lines = vec![Line::from(vec![key(":"), Span::raw(query.clone())])];
            for (index, (command, desc, keys)) in entries.iter().enumerate() {
                let style = if index == *selected {
                    styles.tab_active
                } else {
                    styles.text
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<14} {desc}", command.name()), style),
                    Span::styled(format!("  {keys}"), styles.comment),
                ]));
            }
            let scroll = (*selected as u16).saturating_sub(8);
            (
                "Command".to_owned(),
                Text::from(lines),
                Line::from(vec![
                    key("Enter"),
                    Span::raw(" run  "),
                    key("Esc"),
                    Span::raw(" close"),
                ]),
                scroll,
                (76, 14),
            )
        }
        Overlay::Prompt { prompt, input } => (
            match prompt {
                Prompt::Search => "Search (regular expression)".to_owned(),
                Prompt::Export => "Export the saved configuration to".to_owned(),
                Prompt::Import => "Import the configuration of (checked first)".to_owned(),
                Prompt::ConfirmTimeout => format!(
                    "Seconds an Apply waits for Confirm ({} to {})",
                    CONFIRM_TIMEOUTS.start(),
                    CONFIRM_TIMEOUTS.end()
                ),
            },
            Text::from(Line::from(vec![
                key(if *prompt == Prompt::Search { "/" } else { ">" }),
                Span::raw(input.clone()),
            ])),
            Line::from(vec![
                key("Enter"),
                Span::raw(" ok  "),
                key("Esc"),
                Span::raw(" cancel  "),
                key("ctrl-u"),
                Span::raw(" clear"),
            ]),
            0,
            (64, 4),
        ),
        Overlay::Diff { diff, scroll } => (
            diff.title.clone(),
            if diff.text.is_empty() {
                Text::raw("no differences")
            } else {
                diff_text(&diff.text, styles)
            },
            close_or_scroll.clone(),
            *scroll,
            (100, 30),
        ),
        Overlay::Plan { preview, scroll } => {
            let mut lines: Vec<Line> = preview
                .operations
                .iter()
                .map(|op| Line::raw(op.clone()))
                .collect();
            lines.push(Line::raw(""));
            if preview.tears_down {
                lines.push(Line::styled(
                    "This configuration has no service, flow or address: applying it \
                     removes everything lbconsole runs.",
                    styles.error,
                ));
            }
            lines.push(Line::styled(
                "A failed step undoes the whole apply. Once applied, confirm before the \
                 countdown ends, or the previous configuration comes back.",
                styles.warning,
            ));
            (
                format!("Apply {} kernel operation(s)?", preview.operations.len()),
                Text::from(lines),
                Line::from(vec![
                    key("y"),
                    Span::raw(" apply  "),
                    key("n"),
                    Span::raw(" cancel  "),
                    key("up/down"),
                    Span::raw(" scroll"),
                ]),
                *scroll,
                (100, 30),
            )
        }
        Overlay::SaveDiff {
            diff,
            errors,
            scroll,
        } => {
            let mut lines: Vec<Line> = Vec::new();
            if *errors > 0 {
                lines.push(Line::styled(
                    format!("The configuration has {errors} error(s); it is saved as it is."),
                    styles.error,
                ));
            }
            lines.extend(diff_text(diff, styles).lines);
            (
                "Save these changes?".to_owned(),
                Text::from(lines),
                Line::from(vec![
                    key("y"),
                    Span::raw(" save  "),
                    key("n"),
                    Span::raw(" cancel  "),
                    key("up/down"),
                    Span::raw(" scroll"),
                ]),
                *scroll,
                (100, 30),
            )
        }
        Overlay::Ask { question, text } => (
            match question {
                Question::Quit => "Quit?".to_owned(),
                Question::Reload => "Reload?".to_owned(),
                Question::Restore(version) => format!("Restore version {version}?"),
                Question::Import(_) => "Import?".to_owned(),
            },
            Text::raw(text.clone()),
            Line::from(vec![
                key("y"),
                Span::raw(" yes  "),
                key("n"),
                Span::raw(" no"),
            ]),
            0,
            (64, 9),
        ),
        Overlay::Stale { text } => (
            "Refused: the saved configuration changed".to_owned(),
            Text::styled(text.clone(), styles.warning),
            Line::from(vec![
                key("r"),
                Span::raw(" reload  "),
                key("Esc"),
                Span::raw(" keep editing"),
            ]),
            0,
            (60, 8),
        ),
        Overlay::Message {
            title,
            text,
            scroll,
        } => (
            title.clone(),
            Text::raw(text.clone()),
            Line::from(vec![key("Esc"), Span::raw(" close")]),
            *scroll,
            (72, 12),
        ),
    };
    let popup = if matches!(
        overlay,
        Overlay::Prompt {
            prompt: Prompt::Search,
            ..
        }
    ) {
        let rect = centered(area, size.0, size.1);
        Rect::new(
            rect.x,
            area.bottom().saturating_sub(rect.height + 2).max(area.y),
            rect.width,
            rect.height,
        )
    } else {
        centered(area, size.0, size.1)
    };
    frame.render_widget(Clear, popup);
    let outer = block(&title, Borders::ALL, app).style(styles.dialog);
    let inner = outer.inner(popup);
    frame.render_widget(outer, popup);
    let [body_area, footer_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(u16::from(inner.height >= 2)),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        body_area,
    );
    frame.render_widget(Paragraph::new(footer), footer_area);
}

fn help_text<'a>(app: &App, styles: &Styles) -> Text<'a> {
    let mut lines = Vec::new();
    for section in Section::ALL {
        lines.push(Line::styled(section.title().to_owned(), styles.title));
        for binding in app.keymap.section(section) {
            lines.push(Line::from(vec![
                Span::styled(format!("  {:<18}", keys_text(&binding.on)), styles.key),
                Span::raw(binding.desc.clone()),
            ]));
        }
    }
    lines.push(Line::styled("In dialogs".to_owned(), styles.title));
    lines.push(Line::raw(
        "  y or Enter: yes, n or Esc: no, up down PgUp PgDn: scroll",
    ));
    Text::from(lines)
}

/// A unified diff, its headers, additions and removals set apart.
fn diff_text<'a>(diff: &str, styles: &Styles) -> Text<'a> {
    Text::from(
        diff.lines()
            .map(|line| {
                let style = if line.starts_with("+++") || line.starts_with("---") {
                    styles.title
                } else if line.starts_with('+') {
                    styles.diff_added
                } else if line.starts_with('-') {
                    styles.diff_removed
                } else if line.starts_with("@@") {
                    styles.comment
                } else {
                    styles.text
                };
                Line::styled(line.to_owned(), style)
            })
            .collect::<Vec<_>>(),
    )
}
