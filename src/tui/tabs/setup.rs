//! The Setup tab: the files' states, the store's history, the HA pair (peer,
//! keepalived, connection sync, configuration sync), the settings and what the
//! machine provides.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Borders, Paragraph, Wrap};

use crate::cli::sync_summary;
use crate::config::ConfigFile;
use crate::health::state::Health;
use crate::store::VersionMeta;
use crate::store::settings::CONFIRM_TIMEOUTS;
use crate::tui::app::{App, Busy, Choice};
use crate::tui::engine::PeerSync;
use crate::tui::keymap::Command;
use crate::tui::tabs::vrrp::keepalived_summary;
use crate::tui::theme::Styles;
use crate::tui::ui::block;

/// Versions of the history the Setup tab keeps in view before the details
/// around it.
const HISTORY_MIN_ROWS: usize = 3;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
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
    let pair = pair_lines(app, &heading, &field);
    if !pair.is_empty() {
        below.extend(pair);
        below.push(Line::raw(""));
    }
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

/// The HA pair: the peer, keepalived, and whether the peer's saved files are
/// this box's. None when this box is not one of a pair.
fn pair_lines(
    app: &App,
    heading: &dyn Fn(&str) -> Line<'static>,
    field: &Field,
) -> Vec<Line<'static>> {
    let styles = &app.theme.styles;
    let Some(Ok(Some(status))) = app.live.as_ref().map(|live| &live.vrrp) else {
        return Vec::new();
    };
    let Some((keepalived, keepalived_style)) = keepalived_summary(status, styles) else {
        return Vec::new();
    };
    let mut lines = vec![heading("HA pair")];
    let peer = match status.peers.as_slice() {
        [] => "none: VRRP adverts go out by multicast, and no sync".to_owned(),
        [peer] => peer.to_string(),
        [peer, more @ ..] => format!("{peer} (and {} more)", more.len()),
    };
    lines.push(field("peer", peer, styles.text));
    lines.push(field("keepalived", keepalived, keepalived_style));
    if let Some(live) = &app.live {
        // Both boxes run both daemons: none means a failover drops every
        // established connection.
        lines.push(match &live.sync_daemons {
            Ok(daemons) if daemons.is_empty() => field(
                "connection sync",
                "off: a failover drops the established connections".to_owned(),
                styles.warning,
            ),
            Ok(daemons) => field("connection sync", sync_summary(daemons), styles.ok),
            Err(error) => field("connection sync", error.clone(), styles.error),
        });
    }
    if !status.peers.is_empty() {
        lines.push(config_sync_line(app, field));
    }
    lines
}

/// Whether the peer's saved lvs.conf and flows.conf are this box's, as last
/// compared.
fn config_sync_line(app: &App, field: &Field) -> Line<'static> {
    let styles = &app.theme.styles;
    let key = app.keymap.keys_for(Command::SyncPeer).unwrap_or_default();
    let (text, style) = match (app.busy, &app.peer_sync) {
        (Some(Busy::ComparingPeer), _) => ("comparing...".to_owned(), styles.comment),
        (Some(Busy::SyncingPeer), _) => ("syncing...".to_owned(), styles.comment),
        (_, Some(PeerSync::Compared(comparison))) if comparison.diff.is_empty() => (
            format!(
                "in step: {} has these lvs.conf, flows.conf (its version {})",
                comparison.peer, comparison.version
            ),
            styles.ok,
        ),
        (_, Some(PeerSync::Compared(comparison))) => (
            format!(
                "{}'s version {} differs: {key} shows the diff, then syncs",
                comparison.peer, comparison.version
            ),
            styles.warning,
        ),
        (_, Some(PeerSync::Synced { peer, report })) => (
            format!(
                "synced: {peer}: {}",
                report.lines().next().unwrap_or_default()
            ),
            styles.ok,
        ),
        (_, Some(PeerSync::Failed(error))) => (
            error.lines().next().unwrap_or_default().to_owned(),
            styles.error,
        ),
        (_, None) => (
            format!("not compared: {key} compares lvs.conf, flows.conf with the peer's"),
            styles.comment,
        ),
    };
    field("config sync", text, style)
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
