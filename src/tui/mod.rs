//! The console: tabs Network · Flows · LB Layer4 · Setup. `app` is the shared
//! state and `update`, `ui` draws it (each tab's live pane in `tabs`, each
//! dialog, with its keys, in `overlay`), `keymap` holds every key, `engine`
//! does the I/O; this module runs the loop that joins them: terminal events and
//! engine answers in, frames out.

pub mod address;
pub mod app;
pub mod editor;
pub mod engine;
pub mod highlight;
pub mod keymap;
pub mod overlay;
pub mod pair;
pub mod rates;
pub mod tabs;
pub mod theme;
pub mod toml_file;
pub mod ui;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ratatui::crossterm::event::{Event, EventStream, KeyEventKind};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::config;
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, NetworkBackend};
use crate::store;
use app::{Action, App, Choice, Effect, Settings};
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
    pub sandbox: Option<crate::sandbox::Notes>,
}

/// Where the user's keymap and theme live: `~/.config/lbconsole` on Linux.
pub fn user_config_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lbconsole").map(|dirs| dirs.config_dir().to_owned())
}

/// The keymap, theme and settings for this terminal. A bad `lbconsole.toml`,
/// keymap or theme file is reported in the console, and the defaults used instead.
pub fn settings(
    paths: &Paths,
    sandbox: Option<crate::sandbox::Notes>,
) -> (Keymap, Theme, Settings) {
    let user_dir = user_config_dir();
    let monochrome = theme::monochrome_terminal(
        std::env::var("NO_COLOR").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
    );
    let mut problems = Vec::new();
    let stored = store::Settings::load(&paths.config_dir).unwrap_or_else(|error| {
        problems.push(format!("{error}; using the default settings"));
        store::Settings::default()
    });
    let looks = looks(stored, user_dir.as_deref(), monochrome, &mut problems);
    let settings = Settings {
        config_dir: paths.config_dir.display().to_string(),
        state_dir: paths.state_dir.display().to_string(),
        stored: looks.settings,
        theme: looks.theme_choice,
        keymap: looks.keymap_choice,
        monochrome,
        sandbox,
        problems,
    };
    (looks.keymap, looks.theme, settings)
}

/// The keymap and theme that the settings choose, loaded.
#[derive(Debug, Clone)]
pub struct Looks {
    pub settings: store::Settings,
    pub keymap: Keymap,
    pub theme: Theme,
    pub keymap_choice: Choice,
    pub theme_choice: Choice,
}

/// Loads the keymap and theme `settings` choose (a preset, or a file in
/// `user_dir`). One that cannot be used is added to `problems`, and the default
/// preset used instead.
pub fn looks(
    settings: store::Settings,
    user_dir: Option<&Path>,
    monochrome: bool,
    problems: &mut Vec<String>,
) -> Looks {
    let choice = |setting: Option<&String>, presets: &[&str], own_file, folder| Choice {
        name: toml_file::chosen(setting.map(String::as_str), user_dir, own_file),
        choices: toml_file::choices(presets, user_dir, own_file, folder),
    };
    let keymap_choice = choice(
        settings.keymap.as_ref(),
        &keymap::PRESETS.map(|(name, _)| name),
        keymap::USER_FILE,
        keymap::USER_FOLDER,
    );
    let theme_choice = choice(
        settings.theme.as_ref(),
        &theme::PRESETS.map(|(name, _)| name),
        theme::USER_FILE,
        theme::USER_FOLDER,
    );
    let keymap = Keymap::load(user_dir, &keymap_choice.name).unwrap_or_else(|error| {
        problems.push(format!("{error}; using the default keys"));
        Keymap::preset("default").expect("default is built in")
    });
    let theme = Theme::load(user_dir, &theme_choice.name, monochrome).unwrap_or_else(|error| {
        problems.push(format!("{error}; using the default theme"));
        Theme::load(None, "default", monochrome).expect("built-in themes load")
    });
    Looks {
        settings,
        keymap,
        theme,
        keymap_choice,
        theme_choice,
    }
}

/// Runs the console until the user quits. The terminal is restored on return
/// and on panic.
pub async fn run<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    options: Options,
    kernel: Kernel<N, I, F>,
) -> Result<(), Box<dyn std::error::Error>> {
    let loaded = engine::load(&options.paths)?;
    let (keymap, theme, settings) = settings(&options.paths, options.sandbox);
    let engine = Engine {
        kernel,
        paths: options.paths,
        confirm_timeout: Some(settings.stored.confirm_timeout),
        user_dir: user_config_dir(),
        monochrome: settings.monochrome,
        peer_comparison: None,
    };
    let mut app = App::new(loaded, keymap, theme, settings);
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
    // The engine runs in this task too: it moves only while this loop waits.
    // So a tick that changed nothing draws nothing, and ticks missed while a
    // slow machine drew (a serial console, an emulated VM) are not made up in
    // a burst: either would keep this loop busy and starve the engine.
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut live = tokio::time::interval(LIVE_REFRESH);
    live.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut effects = app.start();
    let mut redraw = true;
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
        if redraw {
            terminal.draw(|frame| ui::draw(frame, app))?;
        }
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
        let shown = app.confirm_left;
        // Reading the kernel again shows nothing until the answer comes.
        let unseen = matches!(action, Action::Tick | Action::RefreshLive);
        effects = app.update(action, Instant::now());
        redraw = !unseen
            || app.confirm_left != shown
            || effects
                .iter()
                .any(|effect| !matches!(effect, Effect::Engine(engine::Request::Observe { .. })));
    }
}
