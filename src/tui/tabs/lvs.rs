//! The LB Layer4 tab's live pane: IPVS services, their real servers, the
//! health the daemon publishes and the operators' overrides. The pane is a
//! list to work in: [`rows`] joins what the kernel, the daemon and lvs.conf
//! say of each server, [`Filter`] and [`Sort`] pick and order them (pure, as
//! k9s and htop do it), and [`services_text`] draws them with the selection
//! and the marks. A server whose address and counters do not fit on one line
//! has its counters on the next ([`head_and_tail`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};

use super::head_and_tail;
use crate::health::publish::ServerReport;
use crate::health::state::Health;
use crate::kernel::ServiceStatus;
use crate::metrics::checker::CheckerReport;
use crate::plan::ipvs::ServiceKey;
use crate::plan::overrides::{Hold, Override};
use crate::store::versions::rfc3339;
use crate::text::printable;
use crate::tui::address::host_port;
use crate::tui::app::App;
use crate::tui::engine::{Live, ServerLine};
use crate::tui::theme::Styles;

/// A real server as the pane lists it: one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub director: String,
    /// Its name in lvs.conf; `None` when lvs.conf does not have it.
    pub server: Option<String>,
    pub address: IpAddr,
    pub port: u16,
    /// What IPVS has of it; `None` when it is not in IPVS.
    pub ipvs: Option<Counters>,
    /// What the daemon says of it; `None` without a daemon.
    pub health: Option<Health>,
    pub sorry: bool,
    pub hold: Option<Override>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub rate: u64,
}

/// What stays the same of a row from one reading of the kernel to the next:
/// the selection and the marks follow it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    pub director: String,
    pub address: IpAddr,
    pub port: u16,
}

impl Row {
    pub fn key(&self) -> RowKey {
        RowKey {
            director: self.director.clone(),
            address: self.address,
            port: self.port,
        }
    }

    /// The words a filter finds its state by.
    fn state(&self) -> String {
        let mut words = Vec::new();
        match (self.sorry, self.health) {
            (true, _) => words.push("sorry"),
            (false, Some(Health::Up)) => words.push("up"),
            (false, Some(Health::Down)) => words.push("down"),
            (false, None) => {}
        }
        if self.ipvs.is_none() {
            words.push("not in ipvs");
        }
        match self.hold.as_ref().map(|o| o.hold) {
            Some(Hold::Drain { .. }) => words.push("drain draining drained"),
            Some(Hold::Disable) => words.push("disable disabled"),
            Some(Hold::Weight { .. }) => words.push("weight"),
            None => {}
        }
        words.join(" ")
    }

    fn name(&self) -> String {
        self.server
            .clone()
            .unwrap_or_else(|| host_port(self.address, self.port).to_string())
    }
}

/// A director and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub director: String,
    pub service: ServiceKey,
    pub scheduler: String,
    pub rate: u64,
    pub rows: Vec<Row>,
}

/// Every IPVS service with its servers: those IPVS has, then those of
/// lvs.conf or the daemon it does not (out, down, a sorry server waiting).
pub fn rows(
    services: &[ServiceStatus],
    names: &BTreeMap<ServiceKey, String>,
    servers: &[ServerLine],
    reports: &[ServerReport],
    overrides: &crate::plan::overrides::Overrides,
) -> Vec<Group> {
    let mut by_service: BTreeMap<ServiceKey, Vec<&ServerLine>> = BTreeMap::new();
    for server in servers {
        by_service.entry(server.service).or_default().push(server);
    }
    let mut by_director: BTreeMap<&str, Vec<&ServerReport>> = BTreeMap::new();
    for report in reports {
        by_director
            .entry(&report.director)
            .or_default()
            .push(report);
    }
    services
        .iter()
        .map(|service| {
            let director = names.get(&service.key).map_or("-", String::as_str);
            let configured: Vec<&ServerLine> = by_service
                .get(&service.key)
                .map(|s| {
                    s.iter()
                        .copied()
                        .filter(|s| s.director == director)
                        .collect()
                })
                .unwrap_or_default();
            let reported: &[&ServerReport] = by_director.get(director).map_or(&[], Vec::as_slice);
            let row = |address: IpAddr, port: u16, ipvs: Option<Counters>| {
                let server = configured
                    .iter()
                    .find(|s| s.dest.address == address && s.dest.port == port)
                    .map(|s| s.server.clone());
                let report = reported
                    .iter()
                    .find(|r| r.address == address && r.port == port);
                Row {
                    director: director.to_owned(),
                    hold: server
                        .as_ref()
                        .and_then(|name| overrides.get(director, name))
                        .cloned(),
                    server: server.or_else(|| report.map(|r| r.server.clone())),
                    address,
                    port,
                    ipvs,
                    health: report.map(|r| r.health),
                    sorry: report.is_some_and(|r| r.sorry),
                }
            };
            let mut rows: Vec<Row> = service
                .destinations
                .iter()
                .map(|dest| {
                    let counters = Counters {
                        weight: dest.weight,
                        active: dest.active_connections,
                        inactive: dest.inactive_connections,
                        rate: dest.stats.connections_per_second,
                    };
                    row(dest.address, dest.port, Some(counters))
                })
                .collect();
            let absent = configured
                .iter()
                .map(|s| (s.dest.address, s.dest.port))
                .chain(reported.iter().map(|r| (r.address, r.port)));
            for (address, port) in absent {
                if !rows.iter().any(|r| r.address == address && r.port == port) {
                    rows.push(row(address, port, None));
                }
            }
            Group {
                director: director.to_owned(),
                service: service.key,
                scheduler: service.scheduler.clone(),
                rate: service.stats.connections_per_second,
                rows,
            }
        })
        .collect()
}

/// The pane's filter, as `/` takes it: text to find in a row's director,
/// server, address or state, case aside; `!text` keeps the rows without it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    text: String,
    invert: bool,
}

impl Filter {
    pub fn parse(input: &str) -> Self {
        let (invert, text) = match input.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        Self {
            text: text.trim().to_lowercase(),
            invert,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn matches(&self, row: &Row) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let found = [
            row.director.to_lowercase(),
            row.server.as_deref().unwrap_or_default().to_lowercase(),
            host_port(row.address, row.port).to_string().to_lowercase(),
            row.state(),
        ]
        .iter()
        .any(|field| field.contains(&self.text));
        found != self.invert
    }
}

/// The order of the pane, which a key cycles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Most active connections first.
    Connections,
    /// Most new connections per second first.
    Rate,
    #[default]
    Name,
    /// Down first, then sorry, unknown, up.
    Health,
}

impl Sort {
    pub fn next(self) -> Self {
        match self {
            Self::Connections => Self::Rate,
            Self::Rate => Self::Name,
            Self::Name => Self::Health,
            Self::Health => Self::Connections,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Connections => "connections",
            Self::Rate => "rate",
            Self::Name => "name",
            Self::Health => "health",
        }
    }

    /// Rows in this order; ties by name.
    fn rows(self, rows: &mut [Row]) {
        let counters = |r: &Row| {
            r.ipvs.unwrap_or(Counters {
                weight: 0,
                active: 0,
                inactive: 0,
                rate: 0,
            })
        };
        let health = |r: &Row| match (r.sorry, r.health) {
            (false, Some(Health::Down)) => 0,
            (true, _) => 1,
            (false, None) => 2,
            (false, Some(Health::Up)) => 3,
        };
        rows.sort_by(|a, b| {
            let first = match self {
                Self::Connections => counters(b).active.cmp(&counters(a).active),
                Self::Rate => counters(b).rate.cmp(&counters(a).rate),
                Self::Name => std::cmp::Ordering::Equal,
                Self::Health => health(a).cmp(&health(b)),
            };
            first.then_with(|| a.name().cmp(&b.name()))
        });
    }

    /// Groups in this order (by their rows' sums), and their rows too.
    pub fn groups(self, groups: &mut [Group]) {
        for group in groups.iter_mut() {
            self.rows(&mut group.rows);
        }
        let active = |g: &Group| -> u64 {
            g.rows
                .iter()
                .filter_map(|r| r.ipvs)
                .map(|c| u64::from(c.active))
                .sum()
        };
        let down = |g: &Group| {
            g.rows
                .iter()
                .filter(|r| !r.sorry && r.health == Some(Health::Down))
                .count()
        };
        groups.sort_by(|a, b| {
            let first = match self {
                Self::Connections => active(b).cmp(&active(a)),
                Self::Rate => b.rate.cmp(&a.rate),
                Self::Name => std::cmp::Ordering::Equal,
                Self::Health => down(b).cmp(&down(a)),
            };
            first.then_with(|| a.director.cmp(&b.director))
        });
    }
}

/// The groups the pane shows: the rows `filter` keeps, in `sort`'s order; a
/// director none of whose rows is kept is left out.
pub fn view(mut groups: Vec<Group>, filter: &Filter, sort: Sort) -> Vec<Group> {
    for group in &mut groups {
        group.rows.retain(|row| filter.matches(row));
    }
    groups.retain(|group| !group.rows.is_empty());
    sort.groups(&mut groups);
    groups
}

/// What the pane draws a selection and marks with.
pub struct Selection<'s> {
    pub selected: Option<&'s RowKey>,
    pub marked: &'s BTreeSet<RowKey>,
    /// The pane has the keys: the selected row is highlighted.
    pub focused: bool,
}

/// The pane, `width` columns wide, and the line of the selected row.
pub fn services_text<'a>(
    live: &Live,
    app: &App,
    groups: &[Group],
    selection: &Selection<'_>,
    styles: &Styles,
    width: usize,
) -> (Text<'a>, Option<usize>) {
    if let Err(error) = &live.services {
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
        return (text, None);
    }
    let mut lines = Vec::new();
    match &live.health {
        Ok(Some(_)) => {}
        Ok(None) => lines.push(Line::styled(
            "no daemon: health not checked",
            styles.warning,
        )),
        Err(error) => lines.push(Line::styled(error.clone(), styles.error)),
    }
    let checker = live.checks.report.as_ref().ok().and_then(Option::as_ref);
    if let Some(report) = checker.filter(|report| report.stalled) {
        lines.push(Line::styled(stalled(report), styles.error));
    }
    if let Err(error) = &live.overrides {
        lines.push(Line::styled(error.clone(), styles.error));
    }
    if groups.is_empty() {
        lines.push(Line::raw(match &live.services {
            Ok(services) if !services.is_empty() => "no server matches the filter",
            _ => "no virtual services",
        }));
    }
    let mut selected_line = None;
    for group in groups {
        lines.extend(head_and_tail(
            Span::styled(format!("{} ", group.director), styles.name),
            (group.service.to_string(), styles.address),
            (String::new(), Style::new()),
            COUNTERS_INDENT,
            width,
        ));
        lines.push(Line::raw(format!(
            "  {} {} conn/s",
            group.scheduler, group.rate
        )));
        for row in &group.rows {
            let key = row.key();
            let selected = selection.selected == Some(&key);
            if selected {
                selected_line = Some(lines.len());
            }
            let first = lines.len();
            let marks = (
                selected && selection.focused,
                selection.marked.contains(&key),
            );
            lines.extend(row_lines(row, marks, styles, width));
            let checked = live.checks.of.as_ref().is_some_and(|of| {
                of.director == row.director && Some(&of.server) == row.server.as_ref()
            });
            if let (true, true, Some(report)) = (selected && selection.focused, checked, checker) {
                lines.extend(check_lines(report, styles));
            }
            if selected && selection.focused {
                for line in &mut lines[first..] {
                    line.style = line.style.patch(styles.selection);
                }
            }
        }
    }
    (Text::from(lines), selected_line)
}

/// The results under the selected server: the newest few, oldest first.
const CHECKS_SHOWN: usize = 5;

fn stalled(report: &CheckerReport) -> String {
    format!(
        "checker stalled: no check completed for {} s while checks are due",
        report.quiet_ms / 1000
    )
}

/// The selected server's last checks: time (UTC), outcome, latency, why.
pub fn check_lines<'a>(report: &CheckerReport, styles: &Styles) -> Vec<Line<'a>> {
    let history = report.history.as_deref().unwrap_or_default();
    if history.is_empty() {
        return vec![Line::styled("      no checks yet", styles.comment)];
    }
    let newest = &history[history.len().saturating_sub(CHECKS_SHOWN)..];
    newest
        .iter()
        .map(|result| {
            let at = rfc3339(i64::try_from(result.at_ms / 1000).unwrap_or(i64::MAX));
            let time = at.get(11..19).unwrap_or(&at).to_owned();
            let (outcome, style) = if result.passed {
                ("passed", styles.ok)
            } else {
                ("failed", styles.error)
            };
            let reason = printable(result.reason.as_deref().unwrap_or_default());
            Line::from(vec![
                Span::styled(format!("      {time} "), styles.comment),
                Span::styled(outcome, style),
                Span::raw(format!(" {} {reason}", result.latency())),
            ])
        })
        .collect()
}

/// Where a server's counters start when they go under its address.
const COUNTERS_INDENT: usize = 4;

/// A row: the cursor and mark (selected, marked), its health, override and
/// name, then its address and counters; an override adds a line saying who
/// set it.
fn row_lines<'a>(
    row: &Row,
    (selected, marked): (bool, bool),
    styles: &Styles,
    width: usize,
) -> Vec<Line<'a>> {
    let mut lead = vec![
        Span::styled(if selected { "»" } else { " " }, styles.key),
        Span::styled(if marked { "*" } else { " " }, styles.key),
        health_mark(row, styles),
    ];
    if let Some(hold) = &row.hold {
        lead.push(Span::styled(
            format!("{} ", hold_mark(hold.hold)),
            styles.error,
        ));
    }
    if let Some(name) = &row.server {
        lead.push(Span::styled(format!("{name} "), styles.name));
    }
    let lead_width: usize = lead.iter().map(Span::width).sum();
    let tail = match (&row.ipvs, row.sorry) {
        (Some(c), _) => {
            let rotation = if c.weight == 0 { " (out)" } else { "" };
            (
                format!(
                    " w{}{rotation} {}/{} {}c/s",
                    c.weight, c.active, c.inactive, c.rate
                ),
                Style::new(),
            )
        }
        (None, true) => (" standby".to_owned(), styles.comment),
        (None, false) => (" not in IPVS".to_owned(), styles.comment),
    };
    // The lead is drawn by `head_and_tail` as one span; its parts keep their
    // styles by being put back after.
    let mut lines = head_and_tail(
        Span::raw(" ".repeat(lead_width)),
        (host_port(row.address, row.port).to_string(), styles.address),
        tail,
        COUNTERS_INDENT,
        width,
    );
    if let Some(first) = lines.first_mut() {
        first.spans.splice(0..1, lead);
    }
    if let Some(hold) = &row.hold {
        let left = match (hold.hold, row.ipvs) {
            (Hold::Drain { .. }, Some(c)) => format!(": {} active left", c.active),
            _ => String::new(),
        };
        let note = hold
            .note
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        lines.push(Line::styled(
            format!("    {} by {}{left}{note}", hold_word(hold.hold), hold.by),
            styles.warning,
        ));
    }
    lines
}

/// The pane's and the gutter's mark of an override: `D`, `X`, `W5`.
pub fn hold_mark(hold: Hold) -> String {
    match hold {
        Hold::Drain { .. } => "D".to_owned(),
        Hold::Disable => "X".to_owned(),
        Hold::Weight { weight } => format!("W{weight}"),
    }
}

fn hold_word(hold: Hold) -> String {
    match hold {
        Hold::Drain { .. } => "draining".to_owned(),
        Hold::Disable => "disabled".to_owned(),
        Hold::Weight { weight } => format!("weight {weight}"),
    }
}

/// What the daemon says of a real server, ahead of its address: `>` when it
/// says nothing.
fn health_mark<'a>(row: &Row, styles: &Styles) -> Span<'a> {
    match (row.sorry, row.health) {
        (true, _) => Span::styled("sorry ", styles.warning),
        (false, Some(Health::Up)) => Span::styled("up ", styles.ok),
        (false, Some(Health::Down)) => Span::styled("down ", styles.error),
        (false, None) => Span::raw("> "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(director: &str, server: &str, address: &str, active: u32, health: Health) -> Row {
        Row {
            director: director.to_owned(),
            server: Some(server.to_owned()),
            address: address.parse().unwrap(),
            port: 80,
            ipvs: Some(Counters {
                weight: 1,
                active,
                inactive: 0,
                rate: u64::from(active) * 2,
            }),
            health: Some(health),
            sorry: false,
            hold: None,
        }
    }

    fn groups() -> Vec<Group> {
        let group = |director: &str, rows: Vec<Row>| Group {
            director: director.to_owned(),
            service: ServiceKey::Fwmark {
                mark: 1,
                family: crate::config::model::types::Family::Ipv4,
            },
            scheduler: "rr".to_owned(),
            rate: rows.iter().filter_map(|r| r.ipvs).map(|c| c.rate).sum(),
            rows,
        };
        let mut drained = row("web", "web2", "10.0.2.12", 3, Health::Up);
        drained.hold = Some(Override {
            director: "web".to_owned(),
            server: "web2".to_owned(),
            hold: Hold::Drain { deadline: None },
            by: "alice".to_owned(),
            at: 0,
            note: None,
        });
        vec![
            group(
                "web",
                vec![row("web", "web1", "10.0.2.11", 1, Health::Up), drained],
            ),
            group(
                "dns",
                vec![
                    row("dns", "dns1", "10.0.3.11", 7, Health::Up),
                    row("dns", "dns2", "10.0.3.12", 0, Health::Down),
                ],
            ),
        ]
    }

    fn shown(groups: &[Group]) -> Vec<String> {
        groups
            .iter()
            .flat_map(|g| {
                g.rows
                    .iter()
                    .map(|r| format!("{}/{}", g.director, r.name()))
            })
            .collect()
    }

    #[test]
    fn a_filter_finds_director_server_address_and_state() {
        for (filter, expected) in [
            ("", &["dns/dns1", "dns/dns2", "web/web1", "web/web2"][..]),
            ("WEB", &["web/web1", "web/web2"]),
            ("dns2", &["dns/dns2"]),
            ("10.0.2.11", &["web/web1"]),
            ("down", &["dns/dns2"]),
            ("draining", &["web/web2"]),
            ("nothing", &[]),
        ] {
            let shown_now = view(groups(), &Filter::parse(filter), Sort::Name);
            assert_eq!(shown(&shown_now), expected, "{filter}");
        }
    }

    #[test]
    fn a_bang_inverts_the_filter() {
        let kept = view(groups(), &Filter::parse("!web"), Sort::Name);
        assert_eq!(shown(&kept), ["dns/dns1", "dns/dns2"]);
        let kept = view(groups(), &Filter::parse("!"), Sort::Name);
        assert_eq!(shown(&kept).len(), 4, "`!` alone filters nothing");
    }

    #[test]
    fn each_sort_orders_directors_and_their_servers() {
        for (sort, expected) in [
            (
                Sort::Connections,
                ["dns/dns1", "dns/dns2", "web/web2", "web/web1"],
            ),
            (Sort::Rate, ["dns/dns1", "dns/dns2", "web/web2", "web/web1"]),
            (Sort::Name, ["dns/dns1", "dns/dns2", "web/web1", "web/web2"]),
            (
                Sort::Health,
                ["dns/dns2", "dns/dns1", "web/web1", "web/web2"],
            ),
        ] {
            assert_eq!(shown(&view(groups(), &Filter::default(), sort)), expected);
        }
        let mut sort = Sort::default();
        let labels: Vec<&str> = (0..4)
            .map(|_| {
                sort = sort.next();
                sort.label()
            })
            .collect();
        assert_eq!(labels, ["health", "connections", "rate", "name"]);
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::health::record::CheckResult;

    fn text(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_selected_server_shows_its_newest_checks_failed_ones_with_why() {
        let result = |second: u64, failure: Option<&str>| CheckResult {
            at_ms: 1_764_637_200_000 + second * 1000,
            passed: failure.is_none(),
            latency_us: 400 + second,
            reason: failure.map(str::to_owned),
        };
        let mut report = CheckerReport {
            checks: 7,
            quiet_ms: 300,
            stalled: false,
            history: Some((0..6).map(|second| result(second, None)).collect()),
            known: true,
        };
        report
            .history
            .as_mut()
            .expect("a history")
            .push(result(6, Some("connect to 10.0.1.2:80: refused\x1b[2J")));
        let styles = crate::tui::theme::Theme::preset("default")
            .expect("a preset")
            .styles;
        assert_eq!(
            text(&check_lines(&report, &styles)),
            [
                "      01:00:02 passed      0.4 ms ",
                "      01:00:03 passed      0.4 ms ",
                "      01:00:04 passed      0.4 ms ",
                "      01:00:05 passed      0.4 ms ",
                "      01:00:06 failed      0.4 ms connect to 10.0.1.2:80: refused\\u001b[2J",
            ]
        );
        report.history = Some(Vec::new());
        assert_eq!(
            text(&check_lines(&report, &styles)),
            ["      no checks yet"]
        );
        report.quiet_ms = 12_500;
        report.stalled = true;
        assert_eq!(
            stalled(&report),
            "checker stalled: no check completed for 12 s while checks are due"
        );
    }
}
