//! The LB Layer4 tab's live pane: IPVS services, their real servers and the
//! health the daemon publishes. A server whose address and counters do not fit
//! on one line has its counters on the next ([`head_and_tail`]).

use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};

use super::head_and_tail;
use crate::health::publish::ServerReport;
use crate::health::state::Health;
use crate::kernel::ServiceStatus;
use crate::tui::address::host_port;
use crate::tui::app::App;
use crate::tui::engine::Live;
use crate::tui::theme::Styles;

/// The pane, `width` columns wide.
pub fn services_text<'a>(live: &Live, app: &App, styles: &Styles, width: usize) -> Text<'a> {
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
        lines.extend(head_and_tail(
            Span::styled(format!("{director} "), styles.name),
            (service.key.to_string(), styles.address),
            (String::new(), Style::new()),
            COUNTERS_INDENT,
            width,
        ));
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
            lines.extend(head_and_tail(
                health_mark(report.copied(), styles),
                (
                    host_port(dest.address, dest.port).to_string(),
                    styles.address,
                ),
                (
                    format!(
                        " w{}{rotation} {}/{} {}c/s",
                        dest.weight,
                        dest.active_connections,
                        dest.inactive_connections,
                        dest.stats.connections_per_second
                    ),
                    Style::new(),
                ),
                COUNTERS_INDENT,
                width,
            ));
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
            lines.extend(head_and_tail(
                health_mark(Some(report), styles),
                (
                    host_port(report.address, report.port).to_string(),
                    styles.address,
                ),
                (why.to_owned(), styles.comment),
                COUNTERS_INDENT,
                width,
            ));
        }
    }
    Text::from(lines)
}

/// Where a server's counters start when they go under its address.
const COUNTERS_INDENT: usize = 4;

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
