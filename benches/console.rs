//! Keystroke to frame in the console on a 50,000-line `lvs.conf`, and the bytes
//! each frame writes to the terminal (ratatui sends only the cells that changed;
//! over a 9600-baud serial line every byte is about a millisecond).
//!
//! `cargo bench --bench console [CASE] [SIZE]`, e.g. `-- typing 80x24` to run one
//! row. The frame goes through ratatui's crossterm backend into a writer that
//! counts bytes, at 80×24 and 120×40. Each row is `CONSOLE_BENCH_ROUNDS` (4)
//! rounds of 500 keystrokes from a fresh console, so that typing never makes one
//! line thousands of characters long. Under `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect=*keystroke*` the instructions counted
//! are those of the keystrokes alone.

use std::cell::Cell;
use std::hint::black_box;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use lbconsole::config;
use lbconsole::store::ConfigFiles;
use lbconsole::tui::app::{Action, App, Settings};
use lbconsole::tui::engine::Loaded;
use lbconsole::tui::keymap::{Command, Keymap};
use lbconsole::tui::theme::Theme;
use lbconsole::tui::ui;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const LINES: usize = 50_000;
const KEYSTROKES: usize = 500;
const DEFAULT_ROUNDS: usize = 4;

/// Counts what the terminal would be sent.
#[derive(Default, Clone)]
struct CountingWriter {
    bytes: Rc<Cell<usize>>,
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.set(self.bytes.get() + buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Directors of eight lines each, with a comment and a blank line between.
fn big_lvs() -> String {
    let mut text = String::new();
    let mut index = 0;
    while text.lines().count() < LINES {
        let (a, b) = (index / 250, index % 250);
        text.push_str(&format!(
            "# director {index}\ndirector d{index} 10.{a}.{b}.1:80 TCP\n    balance roundrobin\n    \
             mode nat\n    server s{index}a 172.16.{b}.11:8080 weight 2 check\n    \
             server s{index}b 172.16.{b}.12:8080 weight 1 check\n\n"
        ));
        index += 1;
    }
    text.lines().take(LINES).map(|l| format!("{l}\n")).collect()
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

struct Figures {
    times: Vec<Duration>,
    bytes: Vec<usize>,
}

fn percentile<T: Copy + Ord>(values: &[T], p: usize) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[(sorted.len() - 1) * p / 100]
}

/// What is measured: one key through `App::update`, then the frame after it.
#[inline(never)]
fn keystroke<W: Write>(
    app: &mut App,
    terminal: &mut Terminal<CrosstermBackend<W>>,
    key: Action,
    now: Instant,
) {
    black_box(app.update(key, now));
    terminal.draw(|frame| ui::draw(frame, app)).expect("draws");
}

/// Runs `keys` one at a time, each followed by a frame, from a fresh console.
fn measure(
    width: u16,
    height: u16,
    lvs: &str,
    keys: &dyn Fn(usize) -> Action,
    figures: &mut Figures,
) {
    let loaded = Loaded {
        saved: ConfigFiles {
            lvs: lvs.as_bytes().to_vec(),
            ..Default::default()
        },
        ..Loaded::default()
    };
    let theme = Theme::preset("default").expect("built in");
    let mut app = App::new(
        loaded,
        Keymap::preset("default").expect("built in"),
        theme,
        Settings::default(),
    );
    let now = Instant::now();
    app.update(Action::Resize(width, height), now);
    app.update(Action::Run(Command::TabLvs), now);
    app.update(Action::Run(Command::Edit), now);
    // The middle of the file, the cursor on the bottom row.
    for _ in 0..(LINES / 2) / usize::from(height) {
        app.update(key(KeyCode::PageDown), now);
    }
    assert!(app.editor(lbconsole::config::ConfigFile::Lvs).cursor().0 > LINES / 3);
    let writer = CountingWriter::default();
    let backend = CrosstermBackend::new(writer.clone());
    let options = TerminalOptions {
        viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
    };
    let mut terminal = Terminal::with_options(backend, options).expect("no terminal needed");
    terminal.draw(|frame| ui::draw(frame, &app)).expect("draws");
    for index in 0..KEYSTROKES {
        let key = keys(index);
        let before = writer.bytes.get();
        let start = Instant::now();
        keystroke(&mut app, &mut terminal, key, now);
        figures.times.push(start.elapsed());
        figures.bytes.push(writer.bytes.get() - before);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the other arguments choose rows.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    let rounds = std::env::var("CONSOLE_BENCH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let lvs = big_lvs();
    assert_eq!(lvs.lines().count(), LINES);
    let start = Instant::now();
    let checked = config::check(config::Sources {
        lvs: lvs.as_bytes(),
        ..Default::default()
    });
    let check_time = start.elapsed();
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    println!(
        "lvs.conf: {LINES} lines, {} bytes; config::check (after typing pauses, off the UI task): {check_time:.2?}",
        lvs.len()
    );
    println!(
        "| Keystroke | Terminal | Keystrokes | Median | p99 | Max | Bytes per frame, median | max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let typing = |index: usize| key(KeyCode::Char((b'a' + (index % 26) as u8) as char));
    let right = |_| key(KeyCode::Right);
    let down = |_| key(KeyCode::Down);
    let paging = |_| key(KeyCode::PageDown);
    let enter = |_| key(KeyCode::Enter);
    let cases: [(&str, &dyn Fn(usize) -> Action); 5] = [
        ("typing a character", &typing),
        ("new line (Enter)", &enter),
        ("cursor right", &right),
        ("cursor down, scrolling a line", &down),
        ("page down", &paging),
    ];
    for (what, keys) in cases {
        for (width, height) in [(80, 24), (120, 40)] {
            let size = format!("{width}x{height}");
            if !filters
                .iter()
                .all(|filter| what.contains(filter.as_str()) || size == *filter)
            {
                continue;
            }
            let mut figures = Figures {
                times: Vec::new(),
                bytes: Vec::new(),
            };
            for _ in 0..rounds {
                measure(width, height, &lvs, keys, &mut figures);
            }
            println!(
                "| {what} | {width}×{height} | {} | {:.2?} | {:.2?} | {:.2?} | {} | {} |",
                figures.times.len(),
                percentile(&figures.times, 50),
                percentile(&figures.times, 99),
                percentile(&figures.times, 100),
                percentile(&figures.bytes, 50),
                percentile(&figures.bytes, 100),
            );
        }
    }
}
