//! The LB Layer4 pane's rates, to look at rather than read: per director a
//! sparkline of connections per second and one of bytes per second (in and
//! out), and under the selected director one of connections per second per
//! real server. The newest is on the right; each bar is the highest rate of a
//! few polls, so that the whole window fits the pane and a short burst still
//! shows; every sparkline of the pane has the same bars, so they line up in
//! time. Block characters, or ASCII where the borders are ASCII (a serial
//! console, `NO_COLOR`).

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};

use crate::config::ConfigFile;
use crate::kernel::ServiceStatus;
use crate::plan::ipvs::ServiceKey;
use crate::tui::LIVE_REFRESH;
use crate::tui::address::{self, host_port};
use crate::tui::app::App;
use crate::tui::engine::Live;
use crate::tui::rates::{self, History, Rate, Rates};
use crate::tui::theme::{ASCII_BORDER, Styles, Theme};

/// How the bars are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bars {
    Blocks,
    /// For terminals without line drawing, as the ASCII borders are.
    Ascii,
}

impl Bars {
    pub fn of(theme: &Theme) -> Self {
        if theme.border == ASCII_BORDER {
            Self::Ascii
        } else {
            Self::Blocks
        }
    }

    /// Zero, then seven heights up to the window's highest rate.
    fn glyphs(self) -> [char; 8] {
        match self {
            Self::Blocks => ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
            Self::Ascii => ['_', '.', ':', '-', '=', '+', '*', '#'],
        }
    }
}

/// What the sparklines show.
pub struct Sparklines<'a> {
    /// As IPVS lists them.
    pub services: &'a [ServiceStatus],
    pub directors: &'a BTreeMap<ServiceKey, String>,
    pub rates: &'a Rates,
    /// The director whose real servers are shown.
    pub selected: Option<&'a ServiceKey>,
}

/// Columns before a sparkline: ` conn/s `.
const LABEL_WIDTH: usize = 8;

/// The pane as the console draws it, `size` (width, height) cells: the
/// director whose section of lvs.conf the cursor is in is the selected one.
pub fn rates_text<'a>(live: &Live, app: &App, size: (usize, usize)) -> Text<'a> {
    let styles = &app.theme.styles;
    let services = match &live.services {
        Ok(services) => services,
        Err(error) => return Text::styled(error.clone(), styles.error),
    };
    let selected =
        director_selected(app, services).or_else(|| director_under_cursor(app, services));
    let pane = Sparklines {
        services,
        directors: &app.directors,
        rates: &app.rates,
        selected: selected.as_ref(),
    };
    sparklines(&pane, styles, Bars::of(&app.theme), size)
}

/// The service of the director of the server selected in the services list,
/// once the administrator has selected one.
fn director_selected(app: &App, services: &[ServiceStatus]) -> Option<ServiceKey> {
    let selected = app.pane.selected.as_ref()?;
    services
        .iter()
        .find(|service| {
            app.directors.get(&service.key).map(String::as_str) == Some(&selected.director)
        })
        .map(|service| service.key)
}

/// The service of the director whose section of lvs.conf holds the editor's
/// cursor, else the first one.
fn director_under_cursor(app: &App, services: &[ServiceStatus]) -> Option<ServiceKey> {
    let editor = app.editor(ConfigFile::Lvs);
    let name = rates::director_at(editor.lines(), editor.cursor().0);
    let named = name.and_then(|name| {
        services
            .iter()
            .find(|service| app.directors.get(&service.key).map(String::as_str) == Some(name))
    });
    named.or(services.first()).map(|service| service.key)
}

/// The sparklines in `size` (width, height) cells. When they do not all fit,
/// directors before the selected one are left out until its own fit.
pub fn sparklines<'a>(
    pane: &Sparklines,
    styles: &Styles,
    bars: Bars,
    size: (usize, usize),
) -> Text<'a> {
    let (width, height) = size;
    if pane.services.is_empty() {
        return Text::raw("no virtual services");
    }
    let rates = pane.rates;
    let value_width = pane
        .services
        .iter()
        .flat_map(|service| {
            let history = rates.service(&service.key);
            let mut values = vec![connections_value(history), bytes_value(history)];
            if Some(&service.key) == pane.selected {
                values.extend(
                    service
                        .destinations
                        .iter()
                        .map(|dest| server_value(rates.server(&service.key, &dest.key()))),
                );
            }
            values
        })
        .map(|value| value.chars().count())
        .max()
        .unwrap_or(0);
    let columns = width.saturating_sub(LABEL_WIDTH + 1 + value_width);
    let per_column = (rates.capacity() as u64).div_ceil(columns.max(1) as u64);
    let scale = Scale {
        polls: rates.polls(),
        per_column,
        columns,
        glyphs: bars.glyphs(),
    };
    let header = format!(
        "last {}, {} a bar",
        duration(LIVE_REFRESH * rates.capacity() as u32),
        duration(LIVE_REFRESH * per_column as u32)
    );
    let header = Line::styled(
        header.chars().take(width).collect::<String>(),
        styles.comment,
    );
    let mut blocks: Vec<Vec<Line<'a>>> = Vec::new();
    let mut selected_block = 0;
    for service in pane.services {
        let history = rates.service(&service.key);
        let director = pane.directors.get(&service.key).map_or("-", String::as_str);
        let key = service.key.to_string();
        let key = address::fit(&key, width.saturating_sub(director.chars().count() + 1));
        let mut lines = vec![
            Line::from(vec![
                Span::styled(format!("{director} "), styles.name),
                Span::styled(key.into_owned(), styles.address),
            ]),
            scale.line(
                " conn/s",
                history,
                |rate| rate.connections,
                connections_value(history),
                styles.ok,
            ),
            scale.line(
                " bytes",
                history,
                |rate| rate.bytes,
                bytes_value(history),
                styles.number,
            ),
        ];
        if Some(&service.key) == pane.selected {
            selected_block = blocks.len();
            for dest in &service.destinations {
                let address = host_port(dest.address, dest.port).to_string();
                lines.push(Line::styled(
                    format!("  {}", address::fit(&address, width.saturating_sub(2))),
                    styles.address,
                ));
                let history = rates.server(&service.key, &dest.key());
                lines.push(scale.line(
                    "",
                    history,
                    |rate| rate.connections,
                    server_value(history),
                    styles.ok,
                ));
            }
        }
        blocks.push(lines);
    }
    let mut total = 1 + blocks.iter().map(Vec::len).sum::<usize>();
    let mut first = 0;
    while total > height && first < selected_block {
        total -= blocks[first].len();
        first += 1;
    }
    let mut lines = vec![header];
    lines.extend(blocks.into_iter().skip(first).flatten());
    Text::from(lines)
}

/// Where the bars fall: the same for every sparkline of the pane.
struct Scale {
    /// The last poll, whose samples are the newest of every history.
    polls: u64,
    /// Polls a bar stands for.
    per_column: u64,
    columns: usize,
    glyphs: [char; 8],
}

impl Scale {
    /// `label`, the bars of `pick` of `history`, and `value`.
    fn line<'a>(
        &self,
        label: &str,
        history: Option<&History>,
        pick: fn(&Rate) -> u64,
        value: String,
        style: Style,
    ) -> Line<'a> {
        Line::from(vec![
            Span::raw(format!("{label:LABEL_WIDTH$}")),
            Span::styled(self.bars(history, pick), style),
            Span::raw(format!(" {value}")),
        ])
    }

    /// One glyph per bar: the highest sample of its polls, scaled to the
    /// highest of all; blank before the history starts.
    fn bars(&self, history: Option<&History>, pick: fn(&Rate) -> u64) -> String {
        let mut highest: Vec<Option<u64>> = vec![None; self.columns];
        let samples = history.map(History::samples);
        let count = samples.map_or(0, |samples| samples.len() as u64);
        let last_bar = self.polls / self.per_column;
        for (index, rate) in samples.into_iter().flatten().enumerate() {
            let poll = self.polls + 1 + index as u64 - count;
            let back = (last_bar - poll / self.per_column) as usize;
            if let Some(at) = self.columns.checked_sub(back + 1) {
                let bar = &mut highest[at];
                *bar = Some(bar.unwrap_or(0).max(pick(rate)));
            }
        }
        let top = highest.iter().flatten().copied().max().unwrap_or(0);
        highest
            .into_iter()
            .map(|bar| match bar {
                None => ' ',
                Some(value) => self.glyphs[height(value, top)],
            })
            .collect()
    }
}

/// 0 for nothing, 1 to 7 for a rate up to `top`: any rate at all stands
/// above the baseline.
fn height(value: u64, top: u64) -> usize {
    if value == 0 || top == 0 {
        return 0;
    }
    let scaled = (u128::from(value) * 7).div_ceil(u128::from(top));
    scaled.clamp(1, 7) as usize
}

fn connections_value(history: Option<&History>) -> String {
    let samples = history.map(History::samples);
    let highest = samples
        .into_iter()
        .flatten()
        .map(|rate| rate.connections)
        .max()
        .unwrap_or(0);
    let now = history
        .and_then(History::latest)
        .map_or(0, |rate| rate.connections);
    format!("{now} max {highest}")
}

fn bytes_value(history: Option<&History>) -> String {
    per_second(
        history
            .and_then(History::latest)
            .map_or(0, |rate| rate.bytes),
    )
}

fn server_value(history: Option<&History>) -> String {
    let now = history
        .and_then(History::latest)
        .map_or(0, |rate| rate.connections);
    format!("{now}/s")
}

/// Bytes a second in SI units, at most three digits: `980 B/s`, `1.2 kB/s`,
/// `34 MB/s`.
fn per_second(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
    let mut value = bytes as f64;
    let mut unit = 0;
    // 999.6 kB/s rounds to 1000: that is 1.0 MB/s.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B/s"),
        _ if value < 9.95 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// `3 min`, `17 s`.
fn duration(span: Duration) -> String {
    let seconds = span.as_secs();
    if seconds >= 120 && seconds.is_multiple_of(60) {
        format!("{} min", seconds / 60)
    } else {
        format!("{seconds} s")
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::kernel::{DestStatus, Stats};
    use crate::plan::ipvs::Forward;

    fn vip(last: u8, port: u16) -> ServiceKey {
        ServiceKey::Vip {
            protocol: 6,
            address: IpAddr::from([192, 168, 0, last]),
            port,
        }
    }

    fn stats(connections: u64, bytes: u64) -> Stats {
        Stats {
            connections_per_second: connections,
            bytes_in_per_second: bytes / 3,
            bytes_out_per_second: bytes - bytes / 3,
            ..Stats::default()
        }
    }

    fn dest(address: &str, connections: u64) -> DestStatus {
        DestStatus {
            address: address.parse().unwrap(),
            port: 8080,
            forward: Forward::Masquerade,
            weight: 1,
            active_connections: 0,
            inactive_connections: 0,
            persistent_connections: 0,
            stats: stats(connections, 0),
        }
    }

    fn service(
        key: ServiceKey,
        connections: u64,
        bytes: u64,
        dests: Vec<DestStatus>,
    ) -> ServiceStatus {
        ServiceStatus {
            key,
            scheduler: "wlc".to_owned(),
            flags: 0,
            timeout: 0,
            stats: stats(connections, bytes),
            destinations: dests,
        }
    }

    /// Three minutes of polls: `web` busy and ramping up, with a burst a
    /// minute ago; `dns` quiet; `app` new for the last 40 s; web's second
    /// server back for the last minute.
    fn three_minutes() -> (Vec<ServiceStatus>, Rates) {
        let mut rates = Rates::default();
        let mut services = Vec::new();
        for poll in 0..rates::SAMPLES as u64 {
            let burst = if (115..120).contains(&poll) { 5 } else { 1 };
            let web = poll / 4 * burst;
            let mut web_servers = vec![dest("10.0.2.11", web / 2)];
            if poll >= 120 {
                web_servers.push(dest("10.0.2.12", web - web / 2));
            }
            web_servers.push(dest("2001:db8:1234:5678::11", poll % 7));
            services = vec![
                service(vip(10, 80), web, web * 14_000, web_servers),
                service(vip(11, 53), 0, 0, vec![dest("10.0.3.11", 0)]),
            ];
            if poll >= 140 {
                services.push(service(vip(12, 443), 3, 2_500, vec![dest("10.0.4.11", 3)]));
            }
            rates.record(Some(&services));
        }
        (services, rates)
    }

    fn directors() -> BTreeMap<ServiceKey, String> {
        [
            (vip(10, 80), "web"),
            (vip(11, 53), "dns"),
            (vip(12, 443), "app"),
        ]
        .into_iter()
        .map(|(key, name)| (key, name.to_owned()))
        .collect()
    }

    /// The pane's lines, each checked to fit a pane wide enough for the
    /// addresses.
    fn render(selected: &ServiceKey, bars: Bars, size: (usize, usize)) -> String {
        let (services, rates) = three_minutes();
        let directors = directors();
        let pane = Sparklines {
            services: &services,
            directors: &directors,
            rates: &rates,
            selected: Some(selected),
        };
        let styles = Theme::preset("default").unwrap().styles;
        let text = sparklines(&pane, &styles, bars, size);
        let lines: Vec<String> = text.lines.iter().map(ToString::to_string).collect();
        if size.0 >= 29 {
            for line in &lines {
                assert!(
                    line.chars().count() <= size.0,
                    "wider than the pane: {line:?}"
                );
            }
        }
        lines.join("\n")
    }

    /// The pane an 80-column console leaves the live pane: 29 columns.
    #[test]
    fn sparklines_at_80_columns() {
        insta::assert_snapshot!(render(&vip(10, 80), Bars::Blocks, (29, 40)));
    }

    #[test]
    fn sparklines_in_ascii_for_a_serial_console() {
        insta::assert_snapshot!(render(&vip(10, 80), Bars::Ascii, (29, 40)));
    }

    #[test]
    fn a_wider_pane_has_more_bars_of_fewer_seconds() {
        insta::assert_snapshot!(render(&vip(11, 53), Bars::Blocks, (45, 40)));
    }

    #[test]
    fn a_short_pane_leaves_out_directors_before_the_selected_one() {
        let shown = render(&vip(12, 443), Bars::Blocks, (29, 9));
        assert!(!shown.contains("web"), "{shown}");
        assert!(shown.contains("app tcp 192.168.0.12:443"), "{shown}");
        assert!(shown.contains("10.0.4.11:8080"), "{shown}");
    }

    #[test]
    fn ascii_bars_are_ascii_and_follow_the_monochrome_theme() {
        assert_eq!(
            Bars::of(&Theme::load(None, "default", true).unwrap()),
            Bars::Ascii
        );
        assert_eq!(Bars::of(&Theme::preset("default").unwrap()), Bars::Blocks);
        let shown = render(&vip(10, 80), Bars::Ascii, (29, 40));
        let blocks = Bars::Blocks.glyphs();
        assert!(!shown.contains(|c| blocks.contains(&c)), "{shown}");
    }

    #[test]
    fn no_size_panics() {
        for width in 0..40 {
            for height in 0..12 {
                render(&vip(10, 80), Bars::Blocks, (width, height));
            }
        }
    }

    #[test]
    fn bytes_a_second_read_in_si_units() {
        let cases = [
            (0, "0 B/s"),
            (999, "999 B/s"),
            (1_000, "1.0 kB/s"),
            (1_234, "1.2 kB/s"),
            (9_960, "10 kB/s"),
            (123_400, "123 kB/s"),
            (999_600, "1.0 MB/s"),
            (34_000_000, "34 MB/s"),
            (u64::MAX, "18446744 TB/s"),
        ];
        for (bytes, text) in cases {
            assert_eq!(per_second(bytes), text, "{bytes}");
        }
    }

    #[test]
    fn any_rate_stands_above_nothing_and_the_highest_fills_the_bar() {
        assert_eq!(height(0, 100), 0);
        assert_eq!(height(1, 100), 1);
        assert_eq!(height(50, 100), 4);
        assert_eq!(height(100, 100), 7);
        assert_eq!(height(u64::MAX, u64::MAX), 7);
    }
}
