//! The console: tabs Network · Flows · LB Layer4 · Setup. `app` is the state and
//! `update`, `ui` draws it, `engine` does the I/O; this module runs the loop that
//! joins them: terminal events and engine answers in, frames out.

pub mod app;
pub mod editor;
pub mod engine;
pub mod highlight;
pub mod keymap;
pub mod theme;
pub mod toml_file;
pub mod ui;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc;

use crate::config;
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, NetworkBackend};
use app::{Action, App, Effect, Settings};
use engine::{Engine, Paths};
use keymap::Keymap;
use theme::Theme;

/// How often the live panes read the kernel.
const LIVE_REFRESH: Duration = Duration::from_secs(1);
/// How often time-driven work (validation after a pause) is looked at.
const TICK: Duration = Duration::from_millis(50);

pub struct Options {
    pub paths: Paths,
    /// What the sandbox provides, when the console runs in one.
    pub sandbox: Option<String>,
}

/// Where the user's keymap and theme live: `~/.config/lbconsole` on Linux.
pub fn user_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lbconsole").map(|dirs| dirs.config_dir().to_owned())
}

/// The keymap, theme and settings for this terminal. A bad user file is
/// reported in the console, and the built-in preset used instead.
pub fn settings(paths: &Paths, sandbox: Option<String>) -> (Keymap, Theme, Settings) {
    let user_dir = user_config_dir();
    let monochrome = theme::monochrome_terminal(
        std::env::var("NO_COLOR").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
    );
    let mut problems = Vec::new();
    let describe = |name: &str| match &user_dir {
        Some(dir) if dir.join(name).exists() => dir.join(name).display().to_string(),
        _ => "built in".to_owned(),
    };
    let keymap = Keymap::load(user_dir.as_deref()).unwrap_or_else(|error| {
        problems.push(format!("{error}; using the default keys"));
        Keymap::preset("default").expect("default is built in")
    });
    let theme = Theme::load(user_dir.as_deref(), monochrome).unwrap_or_else(|error| {
        problems.push(format!("{error}; using the default theme"));
        Theme::load(None, monochrome).expect("built-in themes load")
    });
    let mono = if monochrome {
        " (monochrome terminal: NO_COLOR or TERM)"
    } else {
        ""
    };
    let settings = Settings {
        config_dir: paths.config_dir.display().to_string(),
        state_dir: paths.state_dir.display().to_string(),
        theme: format!("{}{mono}", describe("theme.toml")),
        keymap: describe("keymap.toml"),
        sandbox,
        problems,
    };
    (keymap, theme, settings)
}

/// Runs the console until the user quits. The terminal is restored on return
/// and on panic.
pub async fn run<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    options: Options,
    kernel: Kernel<N, I, F>,
) -> Result<(), Box<dyn std::error::Error>> {
    let loaded = engine::load(&options.paths)?;
    let (keymap, theme, settings) = settings(&options.paths, options.sandbox);
    let mut app = App::new(loaded, keymap, theme, settings);
    let confirm_timeout = crate::store::Settings::load(&options.paths.config_dir)
        .map(|settings| settings.confirm_timeout)
        .unwrap_or(crate::store::settings::DEFAULT_CONFIRM_TIMEOUT);
    let engine = Engine {
        kernel,
        paths: options.paths,
        confirm_timeout: Some(confirm_timeout),
        modules: engine::module_loaded,
    };
    let (action_tx, action_rx) = mpsc::unbounded_channel();
    let (request_tx, request_rx) = mpsc::unbounded_channel();
    let mut terminal = ratatui::init();
    let size = terminal.size()?;
    app.update(Action::Resize(size.width, size.height), Instant::now());
    let result = tokio::select! {
        result = ui_loop(&mut terminal, &mut app, action_rx, action_tx.clone(), request_tx) => result,
        () = engine.serve(request_rx, action_tx) => Ok(()),
    };
    ratatui::restore();
    result
}

async fn ui_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    mut actions: mpsc::UnboundedReceiver<Action>,
    action_tx: mpsc::UnboundedSender<Action>,
    requests: mpsc::UnboundedSender<engine::Request>,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut live = tokio::time::interval(LIVE_REFRESH);
    let mut effects = app.start();
    loop {
        for effect in effects.drain(..) {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::Engine(request) => requests.send(request)?,
                Effect::Check { generation, files } => {
                    let tx = action_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let checked = config::check(files.sources());
                        let _ = tx.send(Action::Checked {
                            generation,
                            directors: engine::director_names(&checked),
                            diagnostics: checked.diagnostics,
                        });
                    });
                }
            }
        }
        terminal.draw(|frame| ui::draw(frame, app))?;
        let action = tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => Action::Key(key),
                Some(Ok(Event::Paste(text))) => Action::Paste(text),
                Some(Ok(Event::Resize(width, height))) => Action::Resize(width, height),
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
            Some(action) = actions.recv() => action,
            _ = tick.tick() => Action::Tick,
            _ = live.tick() => Action::RefreshLive,
        };
        effects = app.update(action, Instant::now());
    }
}
