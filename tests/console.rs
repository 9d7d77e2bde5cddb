//! The console without a terminal: keys into `update`, frames out of `ui::draw`
//! on ratatui's TestBackend, the kernel a fake, the store real (in a temporary
//! directory). Snapshots of every tab at 80×24 and 120×40 with the examples'
//! configuration applied.

use std::time::{Duration, Instant};

use lbconsole::apply::TearDown;
use lbconsole::config::model::types::{Family, IpNet};
use lbconsole::config::{self, ConfigFile};
use lbconsole::daemon::DAEMON_LOCK;
use lbconsole::ha::status::{InstanceStatus, Keepalived, VrrpState, VrrpStatus};
use lbconsole::health::publish::{self, ServerReport};
use lbconsole::health::state::Health;
use lbconsole::kernel::fake::{FakeFirewall, FakeIpvs, FakeKernel};
use lbconsole::kernel::{IpvsBackend, Kernel, KernelError, Stats, SyncDaemon, SyncRole};
use lbconsole::plan::ipvs::{DestKey, ServiceKey};
use lbconsole::store::lock::Lock;
use lbconsole::store::{self as lbstore, ConfigFiles, Store};
use lbconsole::tui::app::{Action, App, Choice, Effect, Mode, Overlay, Settings, Tab};
use lbconsole::tui::engine::{
    self, Applied, Engine, Facts, PairNote, Paths, PeerComparison, PlanPreview, Request,
};
use lbconsole::tui::keymap::{Command, Keymap};
use lbconsole::tui::theme::Theme;
use lbconsole::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn examples() -> ConfigFiles {
    ConfigFiles {
        network: include_bytes!("../examples/network.conf").to_vec(),
        flows: include_bytes!("../examples/flows.conf").to_vec(),
        lvs: include_bytes!("../examples/lvs.conf").to_vec(),
    }
}

fn facts() -> Facts {
    Facts {
        hostname: "lb1".to_owned(),
        kernel: "6.1.0-test".to_owned(),
        ipvs: Ok(()),
        bonding: Err(
            "no bonding: this kernel has no bonding module loaded (modprobe bonding)".to_owned(),
        ),
        nftables: Ok(()),
    }
}

fn settings() -> Settings {
    let choice = |presets: [(&str, &str); 2]| Choice {
        name: "default".to_owned(),
        choices: presets.map(|(name, _)| name.to_owned()).to_vec(),
    };
    Settings {
        config_dir: "/etc/lbconsole".to_owned(),
        state_dir: "/var/lib/lbconsole".to_owned(),
        stored: Default::default(),
        theme: choice(lbconsole::tui::theme::PRESETS),
        keymap: choice(lbconsole::tui::keymap::PRESETS),
        monochrome: false,
        sandbox: None,
        problems: Vec::new(),
    }
}

fn engine(state_dir: &std::path::Path) -> Engine<FakeKernel, FakeIpvs, FakeFirewall> {
    Engine {
        kernel: Kernel {
            network: FakeKernel::with_veths(&["eth0", "eth1", "eth2", "eth3"]),
            ipvs: Ok(FakeIpvs::default()),
            firewall: FakeFirewall::default(),
        },
        paths: Paths {
            config_dir: state_dir.join("config"),
            state_dir: state_dir.to_owned(),
        },
        confirm_timeout: None,
        user_dir: None,
        monochrome: false,
        peer_comparison: None,
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lbconsole-console-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A console on the examples, validated, with its effects carried out by
/// `engine` until none are left.
struct Console {
    app: App,
    engine: Engine<FakeKernel, FakeIpvs, FakeFirewall>,
    /// Runs the engine's answers as the console's loop does.
    runtime: tokio::runtime::Runtime,
    /// A stand-in health daemon, once a test asks for one.
    health: Option<publish::Publisher>,
    /// A stand-in HA peer that configuration sync reaches, once a test sets
    /// one; none is out of reach.
    peer: Option<FakePeer>,
    /// Configuration sync goes through the engine, to the ssh of the config
    /// dir's lbconsole.toml, instead of to `peer`.
    real_sync: bool,
    /// The daemon's lock, held as a running daemon holds it: its VRRP
    /// status is trusted only while it does.
    daemon: Option<Lock>,
    now: Instant,
    quit: bool,
}

impl Console {
    fn new(name: &str, saved: ConfigFiles) -> Self {
        let dir = temp_dir(name);
        let engine = engine(&dir);
        std::fs::create_dir_all(&engine.paths.config_dir).unwrap();
        for file in ConfigFile::ALL {
            std::fs::write(
                engine.paths.config_dir.join(file.file_name()),
                saved.get(file),
            )
            .unwrap();
        }
        let loaded = engine::load(&engine.paths).unwrap();
        let app = App::new(
            loaded,
            Keymap::preset("default").unwrap(),
            Theme::preset("default").unwrap(),
            settings(),
        );
        let mut console = Self {
            app,
            engine,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            now: Instant::now(),
            quit: false,
            health: None,
            peer: None,
            real_sync: false,
            daemon: None,
        };
        let effects = console.app.start();
        console.carry_out(effects);
        console
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            let action = match effect {
                Effect::Quit => {
                    self.quit = true;
                    continue;
                }
                Effect::Check { generation, files } => {
                    let checked = config::check(files.sources());
                    Action::Checked {
                        generation,
                        directors: lbconsole::tui::engine::director_names(&checked),
                        diagnostics: checked.diagnostics,
                    }
                }
                // The machine's facts would make snapshots differ between hosts.
                Effect::Engine(Request::Facts) => Action::Facts(Box::new(facts())),
                Effect::Engine(Request::ComparePeer(to)) if !self.real_sync => {
                    Action::PeerCompared(match (to, &self.peer) {
                        (None, _) => Err(NO_PEER.to_owned()),
                        (Some(peer), None) => Err(unreachable(&peer)),
                        (Some(peer), Some(fake)) => Ok(PeerComparison {
                            peer,
                            version: fake.version,
                            diff: fake.diff.clone(),
                        }),
                    })
                }
                Effect::Engine(Request::SyncPeer {
                    peer,
                    expect_version,
                }) if !self.real_sync => Action::PeerSynced {
                    result: self
                        .peer
                        .as_mut()
                        .ok_or_else(|| unreachable(&peer))
                        .and_then(|fake| fake.sync(expect_version)),
                    peer,
                },
                Effect::Engine(request) => {
                    match self.runtime.block_on(self.engine.answer(request)) {
                        // So would the times and users of the versions.
                        Action::History(Ok(mut history)) => {
                            for meta in &mut history.versions {
                                meta.time = format!("2025-11-21T13:{:02}:07Z", meta.number);
                                meta.user = "admin".to_owned();
                            }
                            Action::History(Ok(history))
                        }
                        action => action,
                    }
                }
            };
            let more = self.app.update(action, self.now);
            self.carry_out(more);
        }
    }

    fn act(&mut self, action: Action) {
        let effects = self.app.update(action, self.now);
        self.carry_out(effects);
    }

    fn key(&mut self, code: KeyCode) {
        self.act(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    fn ctrl(&mut self, c: char) {
        self.act(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::CONTROL,
        )));
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            let code = if c == '\n' {
                KeyCode::Enter
            } else {
                KeyCode::Char(c)
            };
            self.key(code);
        }
    }

    /// Lets typing pause long enough to be validated.
    fn pause(&mut self) {
        self.now += Duration::from_millis(200);
        self.act(Action::Tick);
    }

    fn run(&mut self, command: Command) {
        self.act(Action::Run(command));
    }

    fn shift(&mut self, c: char) {
        self.act(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::SHIFT,
        )));
    }

    fn store(&self) -> Store {
        Store::open(&self.engine.paths.config_dir, &self.engine.paths.state_dir).unwrap()
    }

    fn notice(&self) -> String {
        self.app.notice.clone().map(|n| n.text).unwrap_or_default()
    }

    /// Appends a comment to lvs.conf and saves it as the next version.
    fn save_an_edit(&mut self, comment: &str) {
        let tab = self.app.tab;
        self.run(Command::TabLvs);
        self.run(Command::BufferBottom);
        self.run(Command::LineEnd);
        self.run(Command::Edit);
        self.type_text(&format!("\n# {comment}"));
        self.key(KeyCode::Esc);
        self.pause();
        self.run(Command::Save);
        self.key(KeyCode::Char('y'));
        assert!(
            self.notice().starts_with("saved as version "),
            "{}",
            self.notice()
        );
        self.run(match tab {
            Tab::Setup => Command::TabSetup,
            _ => Command::TabLvs,
        });
    }

    /// Answers on the health socket of the state dir as the daemon does.
    fn serve_health(&mut self, reports: Vec<ServerReport>) {
        let _inside = self.runtime.enter();
        self.health =
            Some(publish::Publisher::start(&self.engine.paths.state_dir, &reports).unwrap());
    }

    /// Exports the saved configuration through the prompt, to `path`.
    fn export_to(&mut self, path: &std::path::Path) {
        self.shift('E');
        self.ctrl('u');
        self.type_text(&path.display().to_string());
        self.key(KeyCode::Enter);
    }

    /// The diff on screen, closed.
    fn take_diff(&mut self) -> engine::Diff {
        match self.app.overlay.take() {
            Some(Overlay::Diff { diff, .. }) => diff,
            other => panic!("no diff: {other:?}"),
        }
    }

    /// The title and text of the message the console shows; panics without one.
    fn message(&self) -> (String, String) {
        match self.app.overlay.clone() {
            Some(Overlay::Message { title, text, .. }) => (title, text),
            other => panic!("no message: {other:?}"),
        }
    }

    fn screen(&mut self, width: u16, height: u16) -> String {
        self.act(Action::Resize(width, height));
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| ui::draw(frame, &self.app)).unwrap();
        terminal.backend().to_string()
    }
}

/// What `ha::peer` says without a peer.
const NO_PEER: &str = "no peer to sync with: the saved network.conf has no `peer` in \
                       `service vrrp`; add one, or name the peer with --to";

fn unreachable(peer: &str) -> String {
    format!("cannot reach {peer} over ssh: ssh: connect to host {peer} port 22: No route to host")
}

/// The other appliance of a pair, as configuration sync sees it: its saved
/// version, and the diff from its lvs.conf and flows.conf to this box's.
struct FakePeer {
    version: u64,
    diff: String,
}

impl FakePeer {
    /// Saves this box's files, as `lbconsole import --expect-version` does.
    fn sync(&mut self, expect_version: u64) -> Result<String, String> {
        if expect_version != self.version {
            return Err(format!(
                "the saved configuration is version {}, not {expect_version}",
                self.version
            ));
        }
        self.version += 1;
        self.diff.clear();
        Ok(format!("saved version {}", self.version))
    }
}

/// One VRRP instance of this box, as keepalived reports it.
fn instance(name: &str, state: VrrpState, priority: u32, vips: &[&str]) -> InstanceStatus {
    let addresses: Vec<IpNet> = vips
        .iter()
        .map(|vip| IpNet::try_from((*vip).to_owned()).unwrap())
        .collect();
    InstanceStatus {
        name: name.to_owned(),
        interface: name.trim_end_matches("-6").to_owned(),
        family: Family::of(addresses[0].addr),
        vrid: if name.starts_with("eth0") { 51 } else { 52 },
        state,
        configured_priority: 150,
        priority,
        addresses,
        since: 1_764_500_000,
    }
}

/// keepalived running `instances`, with the peer of the example.
fn running(instances: Vec<InstanceStatus>) -> VrrpStatus {
    VrrpStatus {
        keepalived: Keepalived::Running { pid: 4242 },
        instances,
        healthy: None,
        peers: vec!["10.0.0.3".parse().unwrap()],
    }
}

/// The front and back instances of the example, both in `state`.
fn front_and_back(state: VrrpState) -> VrrpStatus {
    running(vec![
        instance("eth0", state, 150, &["10.0.0.100/24"]),
        instance("eth1", state, 150, &["10.1.0.1/24"]),
    ])
}

impl Console {
    /// The foreground and background of `word`'s first cell in the live pane
    /// of an 80×24 screen.
    fn live_colours(&mut self, word: &str) -> (ratatui::style::Color, ratatui::style::Color) {
        self.act(Action::Resize(80, 24));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| ui::draw(frame, &self.app)).unwrap();
        let buffer = terminal.backend().buffer();
        let (x, y) = (0..24)
            .find_map(|y| {
                let row: String = (50..80).map(|x| buffer[(x, y)].symbol()).collect();
                row.find(word).map(|x| (x as u16 + 50, y))
            })
            .unwrap_or_else(|| panic!("{word} not in the live pane"));
        (buffer[(x, y)].fg, buffer[(x, y)].bg)
    }

    /// Writes the VRRP status as a running daemon does, and reads the live
    /// panes again.
    fn publish_vrrp(&mut self, status: &VrrpStatus) {
        let state_dir = &self.engine.paths.state_dir;
        if self.daemon.is_none() {
            self.daemon = Some(
                Lock::try_acquire(&state_dir.join(DAEMON_LOCK))
                    .unwrap()
                    .unwrap(),
            );
        }
        lbconsole::ha::status::write(state_dir, status).unwrap();
        self.act(Action::RefreshLive);
    }
}

/// The examples applied to a fake kernel, and the live panes read from it.
fn applied_console(name: &str) -> Console {
    applied(name, examples())
}

/// `files` applied to a fake kernel, and the live panes read from it.
fn applied(name: &str, files: ConfigFiles) -> Console {
    let mut console = Console::new(name, files);
    console.run(Command::Apply);
    assert!(matches!(console.app.overlay, Some(Overlay::Plan { .. })));
    console.key(KeyCode::Char('y'));
    assert!(
        console
            .app
            .notice
            .as_ref()
            .unwrap()
            .text
            .starts_with("applied "),
        "{:?}",
        console.app.notice
    );
    console.act(Action::RefreshLive);
    console
}

#[test]
fn every_tab_at_80x24_and_120x40() {
    let mut console = applied_console("snapshots");
    for tab in Tab::ALL {
        console.app.tab = tab;
        for (width, height) in [(80, 24), (120, 40)] {
            let name = format!(
                "{}_{width}x{height}",
                tab.title().replace(' ', "_").to_lowercase()
            );
            insta::assert_snapshot!(name, console.screen(width, height));
        }
    }
}

#[test]
fn monochrome_console_has_ascii_borders() {
    let mut console = applied_console("mono");
    console.app.theme = Theme::load(None, "default", true).unwrap();
    console.run(Command::TabLvs);
    insta::assert_snapshot!("lb_layer4_mono_80x24", console.screen(80, 24));
}

/// Draws the console at every size from 1×1 to 130×45 (every `step`-th one).
fn sweep(console: &mut Console, step: usize) {
    let mut terminal = Terminal::new(TestBackend::new(1, 1)).unwrap();
    for width in (1..=130).step_by(step) {
        for height in (1..=45).step_by(step) {
            console.act(Action::Resize(width, height));
            terminal.backend_mut().resize(width, height);
            terminal
                .draw(|frame| ui::draw(frame, &console.app))
                .unwrap();
        }
    }
}

/// A console with problems in the editor, for drawing at every size.
fn busy_console(name: &str, tab: Tab) -> Console {
    let mut console = applied_console(name);
    console.run(Command::Edit);
    console.type_text("director");
    console.pause();
    console.app.tab = tab;
    console
}

#[test]
fn no_size_panics_network() {
    sweep(&mut busy_console("size-network", Tab::Network), 1);
}

#[test]
fn no_size_panics_flows() {
    sweep(&mut busy_console("size-flows", Tab::Flows), 1);
}

#[test]
fn no_size_panics_lvs() {
    sweep(&mut busy_console("size-lvs", Tab::Lvs), 1);
}

#[test]
fn no_size_panics_lvs_rates() {
    let mut console = busy_console("size-rates", Tab::Lvs);
    console.app.rates_shown = true;
    // Every fourth size: the pane's own sizes are swept in its unit tests.
    sweep(&mut console, 4);
}

#[test]
fn no_size_panics_setup() {
    sweep(&mut busy_console("size-setup", Tab::Setup), 1);
}

#[test]
fn no_size_panics_in_dialogs() {
    let mut console = busy_console("size-dialogs", Tab::Lvs);
    for command in [
        Command::Help,
        Command::Palette,
        Command::Save,
        Command::Search,
        Command::Export,
        Command::SetConfirmTimeout,
    ] {
        console.app.overlay = None;
        console.run(command);
        assert!(console.app.overlay.is_some());
        sweep(&mut console, 3);
    }
}

#[test]
fn no_size_panics_in_the_setup_tabs_dialogs() {
    let mut console = busy_console("size-setup-dialogs", Tab::Setup);
    for command in [
        Command::ShowDiff,
        Command::DiffEdited,
        Command::RestoreVersion,
    ] {
        console.app.overlay = None;
        console.run(command);
        assert!(console.app.overlay.is_some(), "{command:?}");
        sweep(&mut console, 3);
    }
}

#[test]
fn typing_edits_the_file_and_esc_stops() {
    let mut console = Console::new("typing", examples());
    console.key(KeyCode::Char('i'));
    assert_eq!(console.app.mode, Mode::Edit);
    console.type_text("# ?:\n");
    assert!(
        console
            .app
            .editor(ConfigFile::Network)
            .contents()
            .starts_with("# ?:\n# network.conf")
    );
    assert_eq!(console.app.unsaved(), [ConfigFile::Network]);
    console.key(KeyCode::Esc);
    assert_eq!(console.app.mode, Mode::Normal);
    console.key(KeyCode::Char('?'));
    assert!(matches!(console.app.overlay, Some(Overlay::Help { .. })));
    console.key(KeyCode::Esc);
    for _ in "# ?:\n".chars() {
        console.ctrl('z');
    }
    assert!(
        console.app.unsaved().is_empty(),
        "undo takes the typing back"
    );
    console.ctrl('y');
    assert_eq!(console.app.unsaved(), [ConfigFile::Network]);
}

#[test]
fn a_change_that_keeps_the_length_is_still_unsaved() {
    let mut console = Console::new("same-length", examples());
    console.key(KeyCode::Char('i'));
    assert!(
        console
            .app
            .editor(ConfigFile::Network)
            .contents()
            .starts_with("# network.conf")
    );
    console.key(KeyCode::Delete);
    console.type_text("X");
    assert_eq!(console.app.unsaved(), [ConfigFile::Network]);
    console.key(KeyCode::Backspace);
    assert_eq!(console.app.unsaved(), [ConfigFile::Network]);
    console.type_text("#");
    assert!(
        console.app.unsaved().is_empty(),
        "the text is the saved one again"
    );
}

#[test]
fn validation_waits_for_typing_to_pause_and_sees_other_files() {
    let mut console = Console::new("debounce", examples());
    assert!(!console.app.checking());
    console.run(Command::TabLvs);
    console.run(Command::BufferBottom);
    console.run(Command::Edit);
    console.type_text("\ndirector maildirekt\n    server m 10.0.1.13\n");
    let start = console.now;
    console.now = start + Duration::from_millis(100);
    console.act(Action::Tick);
    assert!(console.app.checking(), "validated before typing paused");
    console.now = start + Duration::from_millis(150);
    console.act(Action::Tick);
    assert!(!console.app.checking());
    // flows.conf's `director maildirect` still resolves; the new one is unused.
    let problems: Vec<String> = console
        .app
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "lvs.conf:39:10: warning: director `maildirekt` has no VIP and no flow sends it traffic \
          (add a VIP to its line, or `flow NAME director maildirekt` to flows.conf)"
        ]
    );
}

#[test]
fn a_stale_validation_is_ignored() {
    let mut console = Console::new("stale-check", examples());
    console.act(Action::Checked {
        generation: 5,
        diagnostics: Vec::new(),
        directors: Default::default(),
    });
    let bogus = config::check(config::Sources {
        network: b"bogus",
        ..Default::default()
    });
    console.act(Action::Checked {
        generation: 4,
        diagnostics: bogus.diagnostics,
        directors: Default::default(),
    });
    assert!(console.app.diagnostics.is_empty());
}

#[test]
fn next_problem_goes_across_files() {
    let mut broken = examples();
    broken.flows = String::from_utf8(broken.flows)
        .unwrap()
        .replace("director maildirect", "director maildirct")
        .into_bytes();
    broken.network = String::from_utf8(broken.network)
        .unwrap()
        .replace("mtu 1500", "mtu 15x")
        .into_bytes();
    let mut console = Console::new("problems", broken);
    let problems: Vec<String> = console
        .app
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    console.run(Command::NextProblem);
    assert_eq!(console.app.tab, Tab::Network);
    assert_eq!(
        console.app.editor(ConfigFile::Network).cursor().0 + 1,
        console.app.diagnostics[0].line as usize
    );
    console.run(Command::NextProblem);
    assert_eq!(console.app.tab, Tab::Flows);
    assert_eq!(console.app.editor(ConfigFile::Flows).cursor(), (18, 19));
    console.run(Command::NextProblem);
    assert_eq!(console.app.tab, Tab::Lvs, "warnings too");
    assert_eq!(console.app.editor(ConfigFile::Lvs).cursor(), (3, 9));
    console.run(Command::NextProblem);
    assert_eq!(console.app.tab, Tab::Network, "goes round");
    console.run(Command::Apply);
    let notice = console.app.notice.clone().unwrap().text;
    assert!(
        notice.starts_with("2 error(s): nothing can be applied"),
        "{notice}"
    );
    assert!(console.app.overlay.is_none());
}

#[test]
fn apply_shows_the_plan_then_runs_it_and_the_state_follows() {
    let mut console = Console::new("apply", examples());
    assert_eq!(
        console.app.unapplied(),
        [ConfigFile::Network, ConfigFile::Flows, ConfigFile::Lvs]
    );
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = console.app.overlay.clone() else {
        panic!("no plan: {:?}", console.app.overlay);
    };
    assert!(preview.operations.contains(&"create bond bond0 (mode active-backup, miimon 100, updelay 1000, downdelay 1000, primary eth2)".to_owned()), "{preview:?}");
    assert!(
        console.engine.kernel.network.executed == 0,
        "nothing runs before yes"
    );
    console.key(KeyCode::Char('y'));
    assert!(console.engine.kernel.network.executed > 0);
    assert!(console.app.unapplied().is_empty());
    console.run(Command::Apply);
    assert_eq!(
        console.app.notice.clone().unwrap().text,
        "no changes: the kernel already runs this configuration"
    );
}

#[test]
fn an_apply_that_takes_everything_away_says_so_and_runs_on_yes() {
    let mut console = Console::new("teardown", ConfigFiles::default());
    // What runs: the examples, applied before this console opened.
    let applied = console
        .runtime
        .block_on(console.engine.answer(Request::Apply {
            files: examples(),
            tear_down: TearDown::Refuse,
        }));
    assert!(matches!(applied, Action::Applied(Ok(_))), "{applied:?}");
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = console.app.overlay.clone() else {
        panic!("no plan: {:?}", console.app.overlay);
    };
    assert!(preview.tears_down, "{preview:?}");
    let screen = console.screen(120, 40);
    assert!(
        screen.contains("applying it removes everything lbconsole runs"),
        "{screen}"
    );
    let ipvs = console.engine.kernel.ipvs.as_ref().expect("IPVS");
    assert!(!ipvs.state.services.is_empty(), "nothing runs before yes");
    console.key(KeyCode::Char('y'));
    let ipvs = console.engine.kernel.ipvs.as_ref().expect("IPVS");
    assert!(ipvs.state.services.is_empty(), "{:?}", ipvs.state);
    assert_eq!(console.engine.kernel.firewall.table, None);
}

/// The engine keeps the cause of a refusal typed, so the console can say what
/// to do: a console not started as root can preview, but not apply.
#[test]
fn an_apply_without_privilege_says_to_run_as_root() {
    let mut console = Console::new("unprivileged", examples());
    console.engine.kernel.network.unprivileged = true;
    console.run(Command::Apply);
    let Some(Overlay::Plan { .. }) = console.app.overlay.clone() else {
        panic!("a preview needs no privilege: {:?}", console.app.overlay);
    };
    console.key(KeyCode::Char('y'));
    let (title, text) = console.message();
    assert_eq!(title, "Not permitted: run the console as root");
    assert_eq!(
        text,
        "changing the kernel needs CAP_NET_ADMIN, which this process lacks (run lbconsole as root); nothing was applied"
    );
    assert_eq!(console.engine.kernel.network.executed, 0);
}

#[test]
fn apply_without_ipvs_names_the_missing_module() {
    let mut console = Console::new("no-ipvs", examples());
    console.engine.kernel.ipvs = Err(KernelError::Unavailable(
        "IPVS is not available (modprobe ip_vs)".to_owned(),
    ));
    console.run(Command::Apply);
    let (title, text) = console.message();
    assert_eq!(title, "Cannot apply");
    assert_eq!(
        text,
        "lvs.conf has 4 directors, but IPVS is not available (modprobe ip_vs); nothing was applied"
    );
    assert_eq!(console.engine.kernel.network.executed, 0);
}

#[test]
fn apply_without_bonding_names_the_missing_module() {
    let mut console = Console::new("no-bonding", examples());
    console.engine.kernel.network.missing_modules = vec!["bonding"];
    console.run(Command::Apply);
    let (_, text) = console.message();
    assert_eq!(
        text,
        "network.conf has bonds, but this kernel has no bonding module loaded (modprobe bonding); \
         nothing was applied"
    );
    assert_eq!(console.engine.kernel.network.executed, 0);
}

#[test]
fn save_shows_the_diff_and_writes_the_files() {
    let mut console = Console::new("save", examples());
    console.run(Command::TabLvs);
    console.run(Command::BufferBottom);
    console.run(Command::Edit);
    console.type_text("\n# saved from the console");
    console.ctrl('s');
    let Some(Overlay::SaveDiff { diff, errors, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(errors, 0);
    assert!(
        diff.contains("--- saved/lvs.conf\n+++ edited/lvs.conf\n"),
        "{diff}"
    );
    assert!(diff.contains("+# saved from the console"), "{diff}");
    console.key(KeyCode::Char('y'));
    let path = console.engine.paths.config_dir.join("lvs.conf");
    let on_disk = std::fs::read_to_string(path).unwrap();
    assert!(
        on_disk.ends_with("server app2 10.0.4.12 check\n\n# saved from the console\n"),
        "{on_disk:?}"
    );
    assert!(console.app.unsaved().is_empty());
}

#[test]
fn save_over_a_file_changed_on_disk_offers_reload() {
    let mut console = Console::new("stale-save", examples());
    console.run(Command::Edit);
    console.type_text("# mine\n");
    let path = console.engine.paths.config_dir.join("network.conf");
    std::fs::write(&path, "# theirs\n").unwrap();
    console.ctrl('s');
    console.key(KeyCode::Char('y'));
    let Some(Overlay::Stale { text }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(
        text,
        "network.conf changed on disk since it was loaded; reload to see it (your edits are then lost)"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# theirs\n");
    console.key(KeyCode::Char('r'));
    assert_eq!(
        console.app.editor(ConfigFile::Network).contents(),
        "# theirs\n"
    );
}

#[test]
fn quitting_with_unsaved_edits_asks_first() {
    let mut console = Console::new("quit", examples());
    console.run(Command::Edit);
    console.type_text("x");
    console.key(KeyCode::Esc);
    console.key(KeyCode::Char('q'));
    let Some(Overlay::Ask { text, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(
        text,
        "Quit with unsaved edits in network.conf and network.conf, flows.conf, lvs.conf not applied?"
    );
    console.key(KeyCode::Char('n'));
    assert!(!console.quit);
    console.key(KeyCode::Char('q'));
    console.key(KeyCode::Char('y'));
    assert!(console.quit);
}

#[test]
fn quitting_an_untouched_console_does_not_ask() {
    let mut console = Console::new("quit-clean", examples());
    console.key(KeyCode::Char('q'));
    assert!(console.quit);
}

#[test]
fn the_palette_runs_what_its_query_finds() {
    let mut console = Console::new("palette", examples());
    console.key(KeyCode::Char(':'));
    console.type_text("setup");
    console.key(KeyCode::Enter);
    assert_eq!(console.app.tab, Tab::Setup);
    assert!(console.app.overlay.is_none());
}

#[test]
fn search_moves_to_the_match() {
    let mut console = Console::new("search", examples());
    console.run(Command::TabLvs);
    console.key(KeyCode::Char('/'));
    console.type_text("sorry1");
    console.key(KeyCode::Enter);
    assert_eq!(console.app.editor(ConfigFile::Lvs).cursor(), (20, 11));
    console.key(KeyCode::Char('/'));
    console.type_text("nowhere");
    console.key(KeyCode::Enter);
    assert_eq!(
        console.app.notice.clone().unwrap().text,
        "`nowhere` not found"
    );
}

#[test]
fn an_unconfirmed_apply_counts_down_and_then_says_it_was_undone() {
    let mut console = Console::new("countdown", examples());
    let running = console.app.saved.clone();
    console.act(Action::Applied(Ok(Applied {
        changes: 3,
        running: running.clone(),
        confirm_within: Some(60),
    })));
    assert_eq!(console.app.confirm_left, Some(60));
    let notice = console.app.notice.clone().unwrap().text;
    assert_eq!(
        notice,
        "applied 3 change(s): confirm within 60 s (c) or they are undone"
    );
    console.now += Duration::from_secs(45);
    console.act(Action::Tick);
    assert_eq!(console.app.confirm_left, Some(15));
    assert!(console.screen(80, 24).contains(" CONFIRM 15s"));
    console.now += Duration::from_secs(16);
    console.act(Action::Tick);
    assert_eq!(console.app.confirm_left, None);
    assert_eq!(console.app.running, None);
    assert_eq!(
        console.app.notice.clone().unwrap().text,
        "not confirmed in time: the previous configuration is restored"
    );
    // Confirm with nothing pending says so and asks the engine nothing.
    console.run(Command::Confirm);
    assert_eq!(
        console.app.notice.clone().unwrap().text,
        "no apply is waiting for confirmation"
    );
}

fn report(director: &str, server: &str, address: &str, port: u16, health: Health) -> ServerReport {
    ServerReport {
        director: director.to_owned(),
        server: server.to_owned(),
        address: address.parse().unwrap(),
        port,
        checked: true,
        sorry: false,
        health,
    }
}

#[test]
fn setup_tab_with_history_at_80x24_and_120x40() {
    let mut console = applied_console("setup-history");
    console.save_an_edit("a second version");
    console.run(Command::TabSetup);
    console.run(Command::MoveDown);
    for (width, height) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("setup_history_{width}x{height}"),
            console.screen(width, height)
        );
    }
}

#[test]
fn lb_layer4_shows_the_health_the_daemon_publishes() {
    let mut console = applied_console("health");
    // The daemon took dns2 out of IPVS; the sorry server waits at weight 0.
    let dns2: std::net::Ipv4Addr = "10.0.3.12".parse().unwrap();
    let ipvs = console.engine.kernel.ipvs.as_mut().unwrap();
    for service in ipvs.state.services.values_mut() {
        service.destinations.retain(|dest, _| dest.address != dns2);
    }
    let sorry = ServerReport {
        sorry: true,
        ..report("web", "sorry1", "10.0.2.99", 8080, Health::Up)
    };
    console.serve_health(vec![
        report("web", "web1", "10.0.2.11", 8080, Health::Up),
        report("web", "web2", "10.0.2.12", 8080, Health::Down),
        sorry,
        report("dns", "dns1", "10.0.3.11", 53, Health::Up),
        report("dns", "dns2", "10.0.3.12", 53, Health::Down),
    ]);
    console.act(Action::RefreshLive);
    console.run(Command::TabLvs);
    for (width, height) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("lb_layer4_health_{width}x{height}"),
            console.screen(width, height)
        );
    }
    console.run(Command::TabSetup);
    let screen = console.screen(120, 40);
    assert!(
        screen.contains("daemon          running: 5 servers checked, 2 down"),
        "{screen}"
    );
}

/// A minute of polls while IPVS counts web's traffic rising, web1 taking
/// half of its connections.
fn a_minute_of_traffic(console: &mut Console) {
    let web = ServiceKey::Vip {
        protocol: 6,
        address: "192.168.0.10".parse().unwrap(),
        port: 80,
    };
    let web1 = DestKey {
        address: "10.0.2.11".parse().unwrap(),
        port: 8080,
    };
    for second in 0..60 {
        let ipvs = console.engine.kernel.ipvs.as_mut().unwrap();
        let connections = second / 3;
        ipvs.stats.insert(
            web,
            Stats {
                connections_per_second: connections,
                bytes_in_per_second: connections * 900,
                bytes_out_per_second: connections * 15_000,
                ..Stats::default()
            },
        );
        ipvs.dest_stats.insert(
            (web, web1),
            Stats {
                connections_per_second: connections / 2,
                ..Stats::default()
            },
        );
        console.act(Action::RefreshLive);
    }
}

#[test]
fn lb_layer4_rates_draw_what_ipvs_counted() {
    let mut console = applied_console("rates");
    a_minute_of_traffic(&mut console);
    console.run(Command::TabLvs);
    console.key(KeyCode::Char('v'));
    assert!(console.app.rates_shown);
    // The cursor is above every director: the first one's servers show.
    for (width, height) in [(80, 24), (120, 40)] {
        insta::assert_snapshot!(
            format!("lb_layer4_rates_{width}x{height}"),
            console.screen(width, height)
        );
    }
    // In app's section of lvs.conf: app's servers instead of web's.
    console.run(Command::BufferBottom);
    let screen = console.screen(80, 24);
    assert!(screen.contains("10.0.4.11:443"), "{screen}");
    assert!(!screen.contains("10.0.2.11:8080"), "{screen}");
    console.run(Command::BufferTop);
    console.app.theme = Theme::load(None, "default", true).unwrap();
    insta::assert_snapshot!("lb_layer4_rates_mono_80x24", console.screen(80, 24));
    // Again: the services.
    console.key(KeyCode::Char('v'));
    let screen = console.screen(120, 40);
    assert!(screen.contains("Kernel: IPVS by name"), "{screen}");
    assert!(screen.contains("wlc 19 conn/s"), "{screen}");
    // From another tab the key brings the rates up on LB Layer4.
    console.run(Command::TabNetwork);
    console.key(KeyCode::Char('v'));
    assert_eq!(console.app.tab, Tab::Lvs);
    assert!(console.app.rates_shown);
}

#[test]
fn a_sandbox_without_ipvs_names_where_it_runs_on_its_first_screen() {
    let mut console = Console::new("sandbox-elsewhere", examples());
    let elsewhere = "No IPVS, bonding in this kernel: the example cannot run here, so the \
                     sandbox has no demo. tests/lab/console runs it in a VM."
        .to_owned();
    console.app.settings.sandbox = Some(lbconsole::sandbox::Notes {
        banner: "sandbox: no IPVS, bonding in this kernel".to_owned(),
        details: vec![elsewhere.clone()],
        elsewhere: Some(elsewhere),
    });
    for (width, height) in [(80, 24), (120, 40)] {
        let screen = console.screen(width, height);
        assert!(screen.contains("tests/lab/console"), "{screen}");
        assert!(screen.contains("sandbox: no IPVS"), "{screen}");
    }
    console.run(Command::TabSetup);
    assert!(console.screen(120, 40).contains("tests/lab/console"));
}

#[test]
fn without_a_daemon_the_setup_tab_says_what_that_means() {
    let mut console = applied_console("no-daemon");
    console.run(Command::TabSetup);
    let screen = console.screen(120, 40);
    let lines: Vec<&str> = screen.lines().collect();
    let at = lines
        .iter()
        .position(|line| {
            line.starts_with(
                "\"  daemon          not running: no health checks; down servers stay in IPVS ",
            )
        })
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        lines[at + 1].starts_with(
            "\"                  start `lbconsole daemon` or `systemctl start lbconsole` "
        ),
        "{screen}"
    );
}

#[test]
fn a_selected_version_shows_what_it_changed() {
    let mut console = Console::new("history-diff", examples());
    console.save_an_edit("the second version");
    console.run(Command::TabSetup);
    let history = console.app.history.clone().unwrap().unwrap();
    let numbers: Vec<u64> = history.versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert_eq!(console.app.selected().unwrap().1.number, 2);

    console.key(KeyCode::Char('d'));
    console.key(KeyCode::Down);
    assert!(
        matches!(console.app.overlay, Some(Overlay::Diff { scroll: 1, .. })),
        "scrolls"
    );
    let diff = console.take_diff();
    assert_eq!(diff.title, "Version 2: what changed from version 1");
    assert!(
        diff.text
            .starts_with("--- version 1/lvs.conf\n+++ version 2/lvs.conf\n"),
        "{}",
        diff.text
    );
    assert!(
        diff.text.contains("\n+# the second version"),
        "{}",
        diff.text
    );

    console.key(KeyCode::Down);
    assert_eq!(console.app.selected().unwrap().1.number, 1);
    console.key(KeyCode::Down);
    assert_eq!(
        console.app.selected().unwrap().1.number,
        1,
        "stops at the oldest"
    );
    console.key(KeyCode::Char('d'));
    let diff = console.take_diff();
    assert_eq!(diff.title, "Version 1: what changed from nothing");
    assert!(
        diff.text.contains("+++ version 1/network.conf"),
        "{}",
        diff.text
    );

    // Against the edited files: what Save would add to version 1.
    console.shift('D');
    let diff = console.take_diff();
    assert_eq!(diff.title, "Version 1 against the edited files");
    assert!(
        diff.text
            .starts_with("--- version 1/lvs.conf\n+++ edited/lvs.conf\n"),
        "{}",
        diff.text
    );

    // Elsewhere than the Setup tab, `d` says where the history is.
    console.run(Command::TabNetwork);
    console.key(KeyCode::Char('d'));
    assert!(console.app.overlay.is_none());
    assert_eq!(
        console.notice(),
        "select a version in the history of the Setup tab (f4) first"
    );
}

#[test]
fn restoring_a_version_reloads_the_buffers_and_does_not_apply() {
    let mut console = Console::new("restore", examples());
    console.save_an_edit("the second version");
    assert_eq!(console.app.saved_version, 2);
    // An edit not saved: the restore asks to throw it away.
    console.run(Command::Edit);
    console.type_text("# not saved\n");
    console.key(KeyCode::Esc);
    console.run(Command::TabSetup);
    console.key(KeyCode::Down);
    console.shift('R');
    let Some(Overlay::Ask { text, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert!(text.starts_with("Restore version 1 (hand edit by admin at 2025-11-21T13:01:07Z)? It becomes the saved configuration as a new version; it is not applied."), "{text}");
    assert!(
        text.ends_with(" Your unsaved edits of lvs.conf are thrown away."),
        "{text}"
    );
    console.key(KeyCode::Char('n'));
    assert_eq!(console.app.saved_version, 2, "no is no");

    console.shift('R');
    console.key(KeyCode::Char('y'));
    assert_eq!(console.app.saved_version, 3);
    assert_eq!(console.app.buffers(), examples());
    assert!(console.app.unsaved().is_empty());
    assert_eq!(console.store().saved().unwrap().files, examples());
    assert_eq!(
        console.notice(),
        "saved version 3: restore of version 1: lvs.conf: comments or layout only; network.conf, \
         flows.conf unchanged; not applied (a applies it)"
    );
    assert_eq!(console.app.selected().unwrap().1.number, 3);
    assert!(console.screen(80, 24).contains(" VIEW  v3 saved |"));
    assert_eq!(console.engine.kernel.network.executed, 0, "nothing applied");
}

#[test]
fn a_restore_after_someone_else_saved_offers_reload() {
    let mut console = Console::new("restore-stale", examples());
    console.save_an_edit("the second version");
    let store = console.store();
    let mut theirs = examples();
    theirs.lvs.extend_from_slice(b"# theirs\n");
    store.save(&theirs, 2, Some("someone else")).unwrap();
    console.run(Command::TabSetup);
    console.key(KeyCode::Down);
    console.key(KeyCode::Down);
    console.shift('R');
    console.key(KeyCode::Char('y'));
    let Some(Overlay::Stale { text }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert!(text.starts_with("configuration changed by "), "{text}");
    assert!(text.ends_with("(version 3); reload or merge"), "{text}");
    console.key(KeyCode::Char('r'));
    assert_eq!(console.app.saved_version, 3);
    assert_eq!(console.app.buffers(), theirs);
}

#[test]
fn export_then_import_round_trips() {
    let mut console = Console::new("export", examples());
    let archive = console.engine.paths.state_dir.join("exported.toml");
    console.shift('E');
    assert_eq!(
        console.app.overlay,
        Some(Overlay::Prompt {
            prompt: lbconsole::tui::app::Prompt::Export,
            input: "lbconsole-1.toml".to_owned()
        })
    );
    console.ctrl('u');
    console.type_text(&archive.display().to_string());
    console.key(KeyCode::Enter);
    assert_eq!(
        console.notice(),
        format!("exported version 1 to {}", archive.display())
    );
    assert!(
        std::fs::read_to_string(&archive)
            .unwrap()
            .starts_with("format = \"lbconsole-archive\"")
    );

    console.save_an_edit("after the export");
    assert_eq!(console.app.saved_version, 2);
    console.shift('I');
    let Some(Overlay::Prompt { input, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(input, archive.display().to_string(), "offered again");
    console.key(KeyCode::Enter);
    // First what it would change: the edit made after the export goes.
    let Some(Overlay::Import { preview, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(preview.replaces, 2);
    assert_eq!(preview.diff.title, format!("Import {}?", archive.display()));
    assert!(
        preview.diff.text.contains("\n-# after the export\n"),
        "{}",
        preview.diff.text
    );
    assert_eq!(console.store().latest().unwrap(), 2, "nothing yet");
    console.key(KeyCode::Char('y'));
    assert_eq!(console.app.saved_version, 3);
    assert_eq!(console.app.buffers(), examples());
    assert_eq!(console.store().saved().unwrap().files, examples());
    assert!(
        console.notice().starts_with(&format!(
            "saved version 3: import of {} (version 1 of ",
            archive.display()
        )),
        "{}",
        console.notice()
    );
}

#[test]
fn an_import_with_errors_shows_the_problems_and_changes_nothing() {
    let mut console = Console::new("import-invalid", examples());
    let archive = console.engine.paths.state_dir.join("broken.toml");
    console.export_to(&archive);
    let text = std::fs::read_to_string(&archive).unwrap();
    // Edited by hand, it is an archive of the format without a checksum (a
    // checksum would refuse the edit before its errors are seen).
    let edited: String = text
        .replace("balance roundrobin", "balance roundrobn")
        .replace("format_version = 2", "format_version = 1")
        .lines()
        .filter(|line| !line.starts_with("sha256 = "))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&archive, edited).unwrap();
    console.shift('I');
    console.key(KeyCode::Enter);
    let (title, text) = console.message();
    assert_eq!(title, "Import refused");
    assert!(
        text.starts_with("the configuration has 1 error; nothing was imported"),
        "{text}"
    );
    assert!(
        text.contains(
            "\n\nlvs.conf:5:13: error: unknown scheduler `roundrobn` (did you mean `roundrobin`?)"
        ),
        "{text}"
    );
    assert_eq!(console.store().latest().unwrap(), 1);
    assert_eq!(console.app.saved_version, 1);
}

#[test]
fn an_import_over_a_newer_save_offers_reload() {
    let mut console = Console::new("import-stale", examples());
    let archive = console.engine.paths.state_dir.join("exported.toml");
    console.export_to(&archive);
    let mut theirs = examples();
    theirs.lvs.extend_from_slice(b"# theirs\n");
    console
        .store()
        .save(&theirs, 1, Some("someone else"))
        .unwrap();
    console.shift('I');
    console.key(KeyCode::Enter);
    assert!(
        matches!(console.app.overlay, Some(Overlay::Stale { .. })),
        "{:?}",
        console.app.overlay
    );
    assert_eq!(console.store().latest().unwrap(), 2, "nothing imported");
    console.key(KeyCode::Char('r'));
    assert_eq!(console.app.buffers(), theirs);
}

#[test]
fn settings_are_written_to_lbconsole_toml_and_take_effect() {
    let mut console = Console::new("settings", examples());
    let user_dir = console.engine.paths.state_dir.join("user");
    std::fs::create_dir_all(user_dir.join("themes")).unwrap();
    std::fs::write(
        user_dir.join("themes/dark.toml"),
        "preset = \"mono\"\nascii_borders = false\n",
    )
    .unwrap();
    console.engine.user_dir = Some(user_dir);
    // As the console runs: guarded applies (none is made here).
    console.engine.confirm_timeout = Some(60);
    let written = |console: &Console| {
        std::fs::read_to_string(console.engine.paths.config_dir.join("lbconsole.toml")).unwrap()
    };
    console.run(Command::TabSetup);

    console.key(KeyCode::Char('t'));
    assert_eq!(console.app.theme, Theme::preset("mono").unwrap());
    assert!(
        written(&console).contains("theme = \"mono\""),
        "{}",
        written(&console)
    );
    assert_eq!(
        console.app.settings.theme.choices,
        ["default", "mono", "themes/dark.toml"]
    );
    console.key(KeyCode::Char('t'));
    assert_eq!(console.app.settings.theme.name, "themes/dark.toml");
    assert_eq!(console.app.theme.border, ratatui::symbols::border::PLAIN);

    console.key(KeyCode::Char('m'));
    assert_eq!(console.app.keymap, Keymap::preset("vim").unwrap());
    assert!(written(&console).contains("keymap = \"vim\""));
    assert!(console.screen(120, 40).contains("keymap          vim"));
    // Vim keys at once: j selects an older version.
    console.save_an_edit("a second version");
    console.key(KeyCode::Char('j'));
    assert_eq!(console.app.selected().unwrap().1.number, 1);

    console.shift('T');
    console.ctrl('u');
    console.type_text("5");
    console.key(KeyCode::Enter);
    assert_eq!(
        console.notice(),
        "confirm_timeout must be 10 to 3600 seconds, not 5"
    );
    assert!(
        matches!(console.app.overlay, Some(Overlay::Prompt { .. })),
        "the prompt stays"
    );
    console.ctrl('u');
    console.type_text("120");
    console.key(KeyCode::Enter);
    assert_eq!(
        console.engine.confirm_timeout,
        Some(120),
        "the next Apply waits 120 s"
    );
    assert_eq!(
        lbstore::Settings::load(&console.engine.paths.config_dir).unwrap(),
        lbstore::Settings {
            confirm_timeout: 120,
            theme: Some("themes/dark.toml".to_owned()),
            keymap: Some("vim".to_owned()),
            ..lbstore::Settings::default()
        }
    );
    assert_eq!(
        console.notice(),
        "kept in lbconsole.toml: theme themes/dark.toml, keymap vim, confirm timeout 120 s"
    );
}

#[test]
fn the_history_stays_in_view_when_the_facts_are_long() {
    let mut console = Console::new("long-facts", examples());
    let missing = "IPVS is not available: the kernel has no IPVS netlink family, so the ip_vs \
                   kernel module is not loaded and could not be loaded on demand"
        .to_owned();
    console.act(Action::Facts(Box::new(Facts {
        ipvs: Err(missing.clone()),
        nftables: Err(missing),
        ..facts()
    })));
    console.run(Command::TabSetup);
    let screen = console.screen(80, 24);
    assert!(
        screen.contains(">    1  2025-11-21 13:01  admin"),
        "{screen}"
    );
}

#[test]
fn the_status_line_hints_are_the_keymaps_descs_as_many_as_fit() {
    let mut console = Console::new("hints", examples());
    console.app.notice = None;
    let screen = console.screen(80, 24);
    let hints = screen.lines().last().unwrap().to_owned();
    assert!(
        hints.contains("? These keys  i Start typing into the file  a Apply to the kernel"),
        "{hints}"
    );
    assert!(!hints.contains("(shows the plan first)"), "{hints}");
    let screen = console.screen(160, 24);
    let hints = screen.lines().last().unwrap().to_owned();
    assert!(hints.contains("q Quit"), "{hints}");

    console.key(KeyCode::Char('i'));
    console.app.notice = None;
    let hints = console.screen(120, 24).lines().last().unwrap().to_owned();
    assert!(
        hints.contains("esc Stop typing  ctrl-s Save the three files"),
        "{hints}"
    );
}

#[test]
fn a_rebound_dialog_key_is_the_one_the_dialog_takes_and_shows() {
    let mut console = Console::new("rebound", examples());
    let yes = console
        .app
        .keymap
        .dialog
        .iter_mut()
        .find(|b| b.run == lbconsole::tui::keymap::DialogCommand::Yes)
        .unwrap();
    yes.on = vec!["o".parse().unwrap()];
    yes.desc = "oui".to_owned();
    console.key(KeyCode::Char('i'));
    console.type_text("# an edit\n");
    console.key(KeyCode::Esc);
    console.key(KeyCode::Char('q'));
    assert!(matches!(console.app.overlay, Some(Overlay::Ask { .. })));
    let screen = console.screen(80, 24);
    assert!(screen.contains("o oui  n no"), "{screen}");
    console.key(KeyCode::Char('y'));
    assert!(console.app.overlay.is_some(), "y is no longer yes");
    assert!(!console.quit);
    console.key(KeyCode::Char('o'));
    assert!(console.quit, "o is");
}

/// A dual-stack appliance: an IPv6 address and route beside the IPv4 ones, an
/// IPv6 director of two servers beside an IPv4 one, an ICMPv6 flow.
fn dual_stack() -> ConfigFiles {
    ConfigFiles {
        network: b"service network eth0
    type ethernet
    auto on
    ip address 192.168.0.1/24
    ip address 2001:db8::5/64
    ip address 2001:db8:0:ab12:cd34:ef56:7890:1234/64
    ip route default 192.168.0.254
    ip route default 2001:db8::1
    ip route 2001:db8:100::/48 2001:db8::fe table 200
"
        .to_vec(),
        flows: b"flow ping6 permit
    match proto icmpv6 dst 2001:db8::5 icmptype 128

flow web6 permit
    match proto tcp dst 2001:db8::10 dstport 80
"
        .to_vec(),
        lvs: b"director web 192.168.0.10:80 TCP
    balance roundrobin
    mode nat
    server web1 10.0.2.11:8080 weight 2
    server web2 10.0.2.12:8080 weight 1

director web6 [2001:db8::10]:80 TCP
    balance roundrobin
    mode nat
    server s1 [2001:db8:1::11]:8080 weight 3
    server s2 [2001:db8:1:0:ab12:cd34:ef56:7890]:8080 weight 1
"
        .to_vec(),
    }
}

/// The files as the editor shows them, valid; not applied: the live panes'
/// IPv6 is the kernel backends' to observe (their own tests), and each pane's
/// layout of a long IPv6 address is tested in `tui::tabs` and `tui::address`.
#[test]
fn a_dual_stack_configuration_at_80x24_and_120x40() {
    let mut console = applied("dual-stack", dual_stack());
    for tab in [Tab::Network, Tab::Flows, Tab::Lvs] {
        console.app.tab = tab;
        for (width, height) in [(80, 24), (120, 40)] {
            let name = format!(
                "dual_stack_{}_{width}x{height}",
                tab.title().replace(' ', "_").to_lowercase()
            );
            insta::assert_snapshot!(name, console.screen(width, height));
        }
    }
    // The editor colours IPv6 literals as addresses, `icmpv6` as a keyword.
    let styles = console.app.theme.styles.clone();
    for (tab, word, style) in [
        (Tab::Network, "2001:db8::5/64", styles.address),
        (Tab::Network, "2001:db8::1", styles.address),
        (Tab::Lvs, "[2001:db8::10]:80", styles.address),
        (Tab::Lvs, "[2001:db8:1::11]:8080", styles.address),
        (Tab::Flows, "icmpv6", styles.keyword),
        (Tab::Flows, "2001:db8::10", styles.address),
    ] {
        console.app.tab = tab;
        console.act(Action::Resize(120, 40));
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
        terminal
            .draw(|frame| ui::draw(frame, &console.app))
            .unwrap();
        let buffer = terminal.backend().buffer();
        // In the editor, left of the live pane; its text is ASCII.
        let (x, y) = (0..40)
            .find_map(|y| {
                let row: String = (0..70).map(|x| buffer[(x, y)].symbol()).collect();
                row.find(&format!(" {word}")).map(|x| (x as u16 + 1, y))
            })
            .unwrap_or_else(|| panic!("{word} not on screen"));
        for x in x..x + word.len() as u16 {
            assert_eq!(buffer[(x, y)].fg, style.fg.unwrap(), "{word} at {x},{y}");
        }
    }
}

#[test]
fn the_network_pane_shows_each_vrrp_instance_and_the_peer_as_this_box_sees_it() {
    let mut console = applied_console("vrrp-pane");
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    insta::assert_snapshot!("network_vrrp_master_80x24", console.screen(80, 24));
    let styles = console.app.theme.styles.clone();
    let highlighted = (styles.tab_active.fg.unwrap(), styles.tab_active.bg.unwrap());
    assert_eq!(console.live_colours("MASTER"), highlighted);

    // Health tracking lowered this box's prio: the peer took over.
    let mut backup = running(vec![
        instance("eth0", VrrpState::Backup, 1, &["10.0.0.100/24"]),
        instance("eth1", VrrpState::Backup, 1, &["10.1.0.1/24"]),
    ]);
    backup.healthy = Some(false);
    console.publish_vrrp(&backup);
    insta::assert_snapshot!("network_vrrp_backup_lowered_80x24", console.screen(80, 24));
    assert_eq!(
        console.live_colours("BACKUP").1,
        ratatui::style::Color::Reset
    );
    assert_eq!(console.live_colours("1/150").0, styles.warning.fg.unwrap());

    let mut down = front_and_back(VrrpState::Master);
    down.keepalived = Keepalived::Down {
        reason: "install keepalived".to_owned(),
    };
    console.publish_vrrp(&down);
    insta::assert_snapshot!("network_vrrp_keepalived_down_80x24", console.screen(80, 24));
}

#[test]
fn a_status_left_by_a_killed_daemon_says_keepalived_is_down() {
    let mut console = applied_console("vrrp-killed");
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    // SIGKILL: the lock goes with the process, the file stays.
    console.daemon = None;
    console.act(Action::RefreshLive);
    let screen = console.screen(120, 40);
    assert!(
        screen.contains("│vrrp: keepalived down: the daemon is not "),
        "{screen}"
    );
    assert!(!screen.contains("MASTER"), "{screen}");
}

#[test]
fn an_interface_with_vips_of_both_families_is_two_instances() {
    let mut console = applied_console("vrrp-dual");
    console.publish_vrrp(&running(vec![
        instance("eth0", VrrpState::Master, 150, &["10.0.0.100/24"]),
        instance(
            "eth0-6",
            VrrpState::Master,
            150,
            &["2001:db8:0:ab12:cd34:ef56:7890:100/64", "2001:db8::100/64"],
        ),
    ]));
    for (width, height) in [(80, 24), (120, 40)] {
        let name = format!("network_vrrp_dual_stack_{width}x{height}");
        insta::assert_snapshot!(name, console.screen(width, height));
    }
}

#[test]
fn no_size_panics_with_the_pair() {
    let mut console = busy_console("size-pair", Tab::Network);
    console.publish_vrrp(&running(vec![
        instance("eth0", VrrpState::Backup, 1, &["10.0.0.100/24"]),
        instance(
            "eth0-6",
            VrrpState::Fault,
            150,
            &["2001:db8:0:ab12:cd34:ef56:7890:100/64"],
        ),
    ]));
    console.peer = Some(FakePeer {
        version: 3,
        diff: "-a\n+b\n".to_owned(),
    });
    sweep(&mut console, 2);
    console.app.tab = Tab::Setup;
    sweep(&mut console, 2);
    console.shift('S');
    assert!(matches!(
        console.app.overlay,
        Some(Overlay::PeerSync { .. })
    ));
    sweep(&mut console, 3);
}

#[test]
fn without_vrrp_the_panes_show_no_pair() {
    let mut console = applied_console("vrrp-none");
    let before = console.screen(120, 40);
    console.publish_vrrp(&VrrpStatus::default());
    assert_eq!(console.screen(120, 40), before);
    console.run(Command::TabSetup);
    assert!(!console.screen(120, 40).contains("HA pair"));
}

#[test]
fn the_setup_tab_shows_the_pair_and_syncs_the_peer_after_its_diff() {
    let mut console = applied_console("vrrp-setup");
    let ipvs = console.engine.kernel.ipvs.as_mut().unwrap();
    for role in [SyncRole::Master, SyncRole::Backup] {
        let daemon = SyncDaemon {
            role,
            interface: "eth1".to_owned(),
            sync_id: 51,
        };
        console
            .runtime
            .block_on(ipvs.start_sync_daemon(&daemon))
            .unwrap();
    }
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    console.peer = Some(FakePeer {
        version: 7,
        diff: "--- peer/lvs.conf\n+++ this box/lvs.conf\n@@ -1 +1 @@\n-    balance wlc\n+    balance roundrobin\n".to_owned(),
    });
    console.run(Command::TabSetup);
    assert!(console.screen(120, 40).contains("not compared: S compares"));

    console.shift('S');
    let Some(Overlay::PeerSync { comparison, .. }) = &console.app.overlay else {
        panic!("no sync dialog: {:?}", console.app.overlay);
    };
    assert_eq!(comparison.version, 7);
    insta::assert_snapshot!("setup_peer_sync_dialog_100x30", console.screen(100, 30));
    // No leaves the peer as it was, and says what differs.
    console.key(KeyCode::Char('n'));
    assert_eq!(console.peer.as_ref().unwrap().version, 7);
    insta::assert_snapshot!("setup_ha_pair_120x40", console.screen(120, 40));

    console.shift('S');
    console.key(KeyCode::Char('y'));
    assert_eq!(console.notice(), "10.0.0.3: saved version 8");
    assert!(
        console
            .screen(120, 40)
            .contains("config sync     synced: 10.0.0.3: saved version 8")
    );
    console.shift('S');
    assert!(console.app.overlay.is_none());
    assert!(
        console
            .notice()
            .starts_with("nothing to sync: 10.0.0.3 has")
    );
    assert!(
        console
            .screen(120, 40)
            .contains("in step: 10.0.0.3 has these lvs.conf, flows.conf (its version 8)")
    );
}

/// The real engine's sync, to a second store on this host through a
/// stand-in for ssh (as tests/sync.rs does): the diff first, then the peer
/// saves this box's lvs.conf and flows.conf and keeps its network.conf.
#[test]
fn sync_through_the_engine_saves_on_the_peer_after_the_diff() {
    use std::os::unix::fs::PermissionsExt;
    let mut console = applied_console("vrrp-engine-sync");
    let root = temp_dir("vrrp-engine-sync-lb2");
    let (lb2_config, lb2_state) = (root.join("config"), root.join("state"));
    std::fs::create_dir_all(&lb2_config).unwrap();
    // lb2's own network.conf, which can run lb1's flows and directors.
    let mut lb2_network = b"# lb2\n".to_vec();
    lb2_network.extend(examples().network);
    std::fs::write(lb2_config.join("network.conf"), &lb2_network).unwrap();
    std::fs::write(lb2_config.join("lvs.conf"), "").unwrap();
    std::fs::write(lb2_config.join("flows.conf"), "").unwrap();
    let lb2 = Store::open(&lb2_config, &lb2_state).unwrap();
    assert_eq!(lb2.saved_or_first().unwrap().version, 1);
    let ssh = root.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\n\
             while [ \"$1\" != -- ]; do shift; done\n\
             shift 2\n\
             export LBCONSOLE_CONFIG_DIR='{}' LBCONSOLE_STATE_DIR='{}'\n\
             exec sh -c \"$*\"\n",
            lb2_config.display(),
            lb2_state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        console.engine.paths.config_dir.join("lbconsole.toml"),
        format!(
            "ssh = \"{}\"\npeer_command = \"{}\"\n",
            ssh.display(),
            env!("CARGO_BIN_EXE_lbconsole")
        ),
    )
    .unwrap();
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    console.real_sync = true;

    console.shift('S');
    let Some(Overlay::PeerSync { comparison, .. }) = &console.app.overlay else {
        panic!(
            "no sync dialog: {:?} {}",
            console.app.overlay,
            console.notice()
        );
    };
    assert_eq!(comparison.version, 1);
    assert!(
        comparison.diff.contains("+director web"),
        "{}",
        comparison.diff
    );
    assert!(
        !comparison.diff.contains("/network.conf"),
        "{}",
        comparison.diff
    );
    console.key(KeyCode::Char('y'));
    assert!(
        console.notice().contains("version 2"),
        "{} {:?}",
        console.notice(),
        console.app.overlay
    );
    let saved = lb2.saved().unwrap();
    assert_eq!(saved.version, 2);
    assert_eq!(saved.files.lvs, examples().lvs);
    assert_eq!(saved.files.flows, examples().flows);
    assert_eq!(saved.files.network, lb2_network);

    console.shift('S');
    assert!(console.app.overlay.is_none());
    assert!(
        console
            .notice()
            .starts_with("nothing to sync: 10.0.0.3 has"),
        "{}",
        console.notice()
    );
}

#[test]
fn a_peer_out_of_reach_is_one_error_line() {
    let mut console = applied_console("vrrp-unreachable");
    console.publish_vrrp(&front_and_back(VrrpState::Backup));
    console.run(Command::TabSetup);
    console.shift('S');
    assert!(console.app.overlay.is_none());
    assert_eq!(
        console.notice(),
        format!("no sync: {}", unreachable("10.0.0.3"))
    );
    assert!(console.app.busy.is_none());
    let screen = console.screen(120, 40);
    assert!(
        screen.contains("config sync     cannot reach 10.0.0.3 over ssh"),
        "{screen}"
    );
}

#[test]
fn a_sync_the_peer_refuses_says_why_and_sends_nothing_more() {
    let mut console = applied_console("vrrp-refused");
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    console.peer = Some(FakePeer {
        version: 7,
        diff: "-a\n+b\n".to_owned(),
    });
    console.shift('S');
    // Someone saved on the peer since the diff was made.
    console.peer.as_mut().unwrap().version = 9;
    console.key(KeyCode::Char('y'));
    let (title, text) = console.message();
    assert_eq!(title, "10.0.0.3 refused the sync");
    assert_eq!(text, "the saved configuration is version 9, not 7");
    assert_eq!(console.peer.as_ref().unwrap().version, 9);
}

#[test]
fn without_a_peer_sync_says_what_is_missing() {
    let mut console = applied_console("vrrp-no-peer");
    let mut status = front_and_back(VrrpState::Master);
    status.peers.clear();
    console.publish_vrrp(&status);
    console.shift('S');
    assert!(console.app.overlay.is_none());
    assert_eq!(console.notice(), format!("no sync: {NO_PEER}"));
    console.run(Command::TabSetup);
    let screen = console.screen(120, 40);
    assert!(
        screen.contains("peer            none: VRRP adverts go out by multicast"),
        "{screen}"
    );
    assert!(!screen.contains("config sync"));
    assert!(
        screen.contains("connection sync off: a failover drops the established connections"),
        "{screen}"
    );
}

#[test]
fn an_apply_on_the_backup_says_the_master_keeps_serving() {
    let mut console = Console::new("vrrp-apply-backup", examples());
    console.publish_vrrp(&front_and_back(VrrpState::Backup));
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = &console.app.overlay else {
        panic!("no plan: {:?}", console.app.overlay);
    };
    assert_eq!(preview.pair, Some(PairNote::Backup));

    // The master applies what leaves VRRP alone without a word about it.
    let mut console = Console::new("vrrp-apply-master", examples());
    console.publish_vrrp(&front_and_back(VrrpState::Master));
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = &console.app.overlay else {
        panic!("no plan: {:?}", console.app.overlay);
    };
    assert_eq!(preview.pair, None);
}

/// One box of the pair: the front VIP on eth0, last in the file.
fn pair_box() -> ConfigFiles {
    ConfigFiles {
        network: b"service vrrp
    peer 10.0.0.3
service network eth0
    ip address 10.0.0.2/24
    vrrp id 51
    vrrp address 10.0.0.100/24
"
        .to_vec(),
        flows: Vec::new(),
        lvs: Vec::new(),
    }
}

#[test]
fn a_prio_change_on_the_master_says_the_addresses_may_move() {
    let mut console = applied("vrrp-apply-prio", pair_box());
    console.publish_vrrp(&running(vec![instance(
        "eth0",
        VrrpState::Master,
        100,
        &["10.0.0.100/24"],
    )]));
    console.run(Command::BufferBottom);
    console.run(Command::Edit);
    console.type_text("    vrrp prio 150");
    console.key(KeyCode::Esc);
    console.pause();
    assert_eq!(
        console.app.count(config::Severity::Error),
        0,
        "{:?}",
        console.app.diagnostics
    );
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = &console.app.overlay else {
        panic!("no plan: {:?} {}", console.app.overlay, console.notice());
    };
    assert_eq!(preview.pair, Some(PairNote::MasterChangesVrrp));
    assert!(preview.changes_vrrp);
    // keepalived owns the address: the kernel has nothing to do.
    assert_eq!(preview.operations, Vec::<String>::new());
}

#[test]
fn the_plan_dialog_names_the_pair_first() {
    let mut console = Console::new("vrrp-plan-dialog", examples());
    console.run(Command::Apply);
    let Some(Overlay::Plan { preview, .. }) = console.app.overlay.take() else {
        panic!("no plan: {:?}", console.app.overlay);
    };
    // A change of vrrp lines alone has no kernel operation (keepalived owns
    // the addresses): the examples' plan stands for whatever comes with it.
    for (note, name) in [
        (PairNote::Backup, "plan_on_the_backup_80x24"),
        (
            PairNote::MasterChangesVrrp,
            "plan_on_the_master_changing_vrrp_80x24",
        ),
    ] {
        console.app.overlay = Some(Overlay::Plan {
            preview: PlanPreview {
                pair: Some(note),
                ..preview.clone()
            },
            scroll: 0,
        });
        insta::assert_snapshot!(name, console.screen(80, 24));
    }
    // A change of prio alone: nothing for the kernel, a reload for keepalived.
    console.app.overlay = None;
    console.act(Action::Planned(Ok(PlanPreview {
        operations: Vec::new(),
        tears_down: false,
        changes_vrrp: true,
        pair: Some(PairNote::MasterChangesVrrp),
    })));
    let screen = console.screen(80, 24);
    assert!(
        screen.contains("│This box is MASTER: this change reloads keepalived"),
        "{screen}"
    );
    assert!(
        screen.contains("│No kernel operation: only the vrrp lines change"),
        "{screen}"
    );
    console.app.overlay = None;
    console.act(Action::Planned(Ok(PlanPreview {
        operations: Vec::new(),
        tears_down: false,
        changes_vrrp: false,
        pair: None,
    })));
    assert!(console.notice().starts_with("no changes"));
    assert!(console.app.overlay.is_none());
}

impl Console {
    /// The LB Layer4 tab with the live pane given the keys.
    fn work_in_the_pane(&mut self) {
        self.run(Command::TabLvs);
        self.ctrl('w');
        assert!(self.app.pane_focused());
    }

    /// The screen with the user who set the overrides as `USER`: it differs
    /// between hosts.
    fn pane_screen(&mut self, width: u16, height: u16) -> String {
        let user = lbstore::versions::current_user();
        self.screen(width, height).replace(
            &format!("by {user}"),
            &format!("by {:<w$}", "USER", w = user.len()),
        )
    }

    /// Says IPVS has `active` connections on the server at `address`, as the
    /// next reading of the kernel would (the fake counts none).
    fn active_on(&mut self, address: &str, active: u32) {
        let address: std::net::IpAddr = address.parse().unwrap();
        let live = self.app.live.as_mut().unwrap();
        for service in live.services.as_mut().unwrap() {
            for dest in &mut service.destinations {
                if dest.address == address {
                    dest.active_connections = active;
                }
            }
        }
    }
}

#[test]
fn the_lb_pane_selects_and_marks_servers_and_drains_them_with_a_note() {
    let mut console = applied_console("pane-drain");
    console.work_in_the_pane();
    // By name: app1 app2 dns1 dns2 mail1 mail2 sorry1 web1 web2.
    console.shift('G');
    console.key(KeyCode::Char('k'));
    console.key(KeyCode::Char(' '));
    console.key(KeyCode::Char(' '));
    console.key(KeyCode::Up);
    console.key(KeyCode::Up);
    insta::assert_snapshot!("lb_pane_marked_120x40", console.pane_screen(120, 40));

    console.key(KeyCode::Char('d'));
    assert!(matches!(console.app.overlay, Some(Overlay::Prompt { .. })));
    console.type_text("kernel update\n");
    assert_eq!(console.notice(), "web/web1, web/web2 drained");
    assert!(console.app.pane.marked.is_empty());
    let overrides = lbstore::overrides::read(&console.engine.paths.state_dir).unwrap();
    let drained: Vec<String> = overrides.servers.iter().map(|o| o.to_string()).collect();
    assert_eq!(drained.len(), 2, "{drained:?}");
    assert!(
        drained[0].starts_with(&format!(
            "server web1 of web drained by {}",
            lbstore::versions::current_user()
        )) && drained[0].ends_with("(kernel update)"),
        "{drained:?}"
    );
    // The kernel runs them at weight 0; the pane counts the connections down.
    console.active_on("10.0.2.11", 3);
    insta::assert_snapshot!("lb_pane_draining_120x40", console.pane_screen(120, 40));
    console.active_on("10.0.2.11", 1);
    assert!(
        console
            .pane_screen(120, 40)
            .contains("draining by USER: 1 active left")
    );

    // The gutter marks web1's and web2's lines in lvs.conf: the file says
    // weight 2, the kernel runs 0.
    console.key(KeyCode::Esc);
    assert!(!console.app.pane_focused());
    let screen = console.pane_screen(120, 40);
    assert!(
        screen.contains("19 D     server web1 10.0.2.11:8080 weight 2 check"),
        "{screen}"
    );
    assert!(
        screen.contains("20 D     server web2 10.0.2.12:8080 weight 2 check"),
        "{screen}"
    );
    assert!(screen.contains("21       server sorry1"), "{screen}");

    // Enable the selected one only (no marks): web1 is back, web2 stays.
    console.work_in_the_pane();
    console.key(KeyCode::Char('j'));
    console.key(KeyCode::Char('e'));
    console.key(KeyCode::Enter);
    assert_eq!(console.notice(), "web/web1 enabled");
    let overrides = lbstore::overrides::read(&console.engine.paths.state_dir).unwrap();
    let left: Vec<String> = overrides.servers.iter().map(|o| o.target()).collect();
    assert_eq!(left, ["web/web2"]);
}

#[test]
fn the_lb_pane_sets_a_weight_disables_and_shows_a_refusal_whole() {
    let mut console = applied_console("pane-weight");
    console.work_in_the_pane();
    // app1, the first row.
    console.key(KeyCode::Char('w'));
    console.type_text("x\n");
    assert_eq!(console.notice(), "`x` is not a weight (a whole number)");
    console.ctrl('u');
    console.type_text("5\n\n");
    assert_eq!(console.notice(), "app/app1 at weight 5");
    console.key(KeyCode::Down);
    console.key(KeyCode::Char('x'));
    console.type_text("\n");
    assert_eq!(console.notice(), "app/app2 disabled");
    insta::assert_snapshot!(
        "lb_pane_weight_disabled_120x40",
        console.pane_screen(120, 40)
    );

    // IPVS refuses: the console says why in full, and nothing is recorded.
    let ipvs = console.engine.kernel.ipvs.as_mut().unwrap();
    ipvs.fail_at = Some(ipvs.executed);
    console.key(KeyCode::Down);
    console.key(KeyCode::Char('d'));
    console.type_text("\n");
    let (title, text) = console.message();
    assert_eq!(title, "Not drained");
    assert!(text.starts_with("dns/dns1: "), "{text}");
    assert!(
        text.ends_with("the overrides were left as they were"),
        "{text}"
    );
    let overrides = lbstore::overrides::read(&console.engine.paths.state_dir).unwrap();
    assert_eq!(overrides.servers.len(), 2);
}

#[test]
fn the_lb_pane_filters_inverts_and_sorts() {
    let mut console = applied_console("pane-filter");
    console.work_in_the_pane();
    console.key(KeyCode::Char('/'));
    console.type_text("web");
    // The pane follows the filter as it is typed.
    assert_eq!(console.app.pane.filter, "web");
    console.key(KeyCode::Enter);
    insta::assert_snapshot!("lb_pane_filter_120x40", console.pane_screen(120, 40));
    console.key(KeyCode::Char('/'));
    console.ctrl('u');
    console.type_text("!web\n");
    insta::assert_snapshot!(
        "lb_pane_inverted_filter_120x40",
        console.pane_screen(120, 40)
    );
    // Esc clears the filter first, then leaves the pane.
    console.key(KeyCode::Esc);
    assert_eq!(console.app.pane.filter, "");
    assert!(console.app.pane_focused());
    console.active_on("10.0.3.12", 9);
    console.active_on("10.0.2.12", 4);
    // Name, then health, then connections.
    console.key(KeyCode::Char('o'));
    console.key(KeyCode::Char('o'));
    assert!(
        console
            .pane_screen(120, 40)
            .contains("Kernel: IPVS by connections")
    );
    insta::assert_snapshot!(
        "lb_pane_sort_connections_120x40",
        console.pane_screen(120, 40)
    );
    console.key(KeyCode::Esc);
    assert!(!console.app.pane_focused());
}

#[test]
fn a_filter_on_two_thousand_directors_shows_exactly_one_servers_rows() {
    let mut lvs = String::new();
    for n in 0..2000 {
        let (a, b) = (n / 250, n % 250);
        lvs.push_str(&format!(
            "director d{n:04} 192.168.{a}.{b}:80 TCP\n    server d{n:04}-a 10.1.{a}.{b}:8080\n    server d{n:04}-b 10.2.{a}.{b}:8080\n"
        ));
    }
    let files = ConfigFiles {
        lvs: lvs.into_bytes(),
        flows: Vec::new(),
        ..examples()
    };
    let mut console = applied("pane-2000", files);
    console.work_in_the_pane();
    console.key(KeyCode::Char('/'));
    console.type_text("d1234-b\n");
    let groups = console.app.pane_groups();
    let rows: Vec<(String, Option<String>)> = groups
        .iter()
        .flat_map(|g| {
            g.rows
                .iter()
                .map(|r| (g.director.clone(), r.server.clone()))
        })
        .collect();
    assert_eq!(rows, [("d1234".to_owned(), Some("d1234-b".to_owned()))]);
    let screen = console.pane_screen(120, 40);
    assert!(screen.contains("d1234 tcp 192.168.4.234:80"), "{screen}");
    assert!(screen.contains("> d1234-b 10.2.4.234:8080"), "{screen}");
    assert!(!screen.contains("d1234-a"), "{screen}");
}

#[test]
fn the_events_pane_shows_the_log_newest_first_in_monochrome_at_80x24() {
    use lbconsole::events::{self, Event, EventKind};
    let mut console = Console::new("events", examples());
    let state = console.engine.paths.state_dir.clone();
    let at = 1_763_731_200;
    for event in [
        Event::new(
            EventKind::Apply,
            "applied version 3: 4 changes; to be confirmed within 60 s",
        )
        .by("alice")
        .at(at),
        Event::new(
            EventKind::Confirm,
            "confirmed the apply by alice at 2025-11-21T13:20:00Z",
        )
        .by("alice")
        .at(at + 20),
        Event::new(
            EventKind::Health,
            "server web1 (10.0.2.11:8080) of director web is down: connection refused\x1b[2J",
        )
        .server("web", "web1")
        .at(at + 65),
        Event::new(
            EventKind::Override,
            "server web2 of web drained by bob: weight 0",
        )
        .by("bob")
        .server("web", "web2")
        .at(at + 90),
        Event::new(
            EventKind::Vrrp,
            "vrrp instance VI_eth1_51 on eth1: BACKUP -> MASTER (priority 150)",
        )
        .at(at + 120),
    ] {
        events::record(&state, &event);
    }
    console.app.theme = Theme::load(None, "default", true).unwrap();
    console.key(KeyCode::F(8));
    assert!(console.app.events_shown, "f8 shows the pane");
    console.act(Action::RefreshLive);
    insta::assert_snapshot!("events_pane_mono_80x24", console.screen(80, 24));
    console.key(KeyCode::F(8));
    assert!(!console.app.events_shown, "f8 again hides it");
}

#[test]
fn importing_a_converted_directory_replaces_lvs_conf_and_keeps_network_conf() {
    let files = ConfigFiles {
        flows: Vec::new(),
        ..examples()
    };
    let mut console = Console::new("import-converted", files.clone());
    let state = console.engine.paths.state_dir.clone();
    let dump = state.join("ipvsadm.txt");
    std::fs::write(
        &dump,
        "-A -t 192.0.2.10:80 -s wlc\n-a -t 192.0.2.10:80 -r 10.0.9.1:80 -m -w 1\n",
    )
    .unwrap();
    let converted = state.join("converted");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let done = lbconsole::cli::convert::convert(
        lbconsole::convert::Source::Ipvsadm,
        &dump,
        Some(&converted),
        &lbconsole::convert::Options::default(),
        &mut out,
        &mut err,
    );
    assert_eq!(
        done,
        Ok(lbconsole::cli::convert::Converted::Clean),
        "{}",
        String::from_utf8_lossy(&err)
    );
    let lvs = std::fs::read(converted.join("lvs.conf")).unwrap();

    console.shift('I');
    console.ctrl('u');
    console.type_text(&converted.display().to_string());
    console.key(KeyCode::Enter);
    let Some(Overlay::Import { preview, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert!(
        preview
            .diff
            .text
            .contains("+director tcp-192.0.2.10-80 192.0.2.10:80 TCP\n")
            && !preview.diff.text.contains("network.conf"),
        "only lvs.conf changes:\n{}",
        preview.diff.text
    );
    console.key(KeyCode::Char('y'));
    assert_eq!(console.app.saved_version, 2, "{}", console.notice());
    let saved = console.store().saved().unwrap().files;
    assert_eq!(saved.lvs, lvs);
    assert_eq!(saved.network, files.network, "network.conf stays");
    assert_eq!(saved.flows, files.flows);
    assert!(
        console.notice().starts_with(&format!(
            "saved version 2: import of lvs.conf from {}",
            converted.display()
        )),
        "{}",
        console.notice()
    );
}

#[test]
fn an_import_shows_what_it_changes_and_what_it_throws_away_before_anything_is_saved() {
    let mut console = Console::new("import-preview", examples());
    let archive = console.engine.paths.state_dir.join("exported.toml");
    console.export_to(&archive);
    console.save_an_edit("saved after the export");
    console.run(Command::Edit);
    console.type_text("# not saved\n");
    console.key(KeyCode::Esc);
    console.shift('I');
    console.key(KeyCode::Enter);
    let Some(Overlay::Import { discarded, .. }) = console.app.overlay.clone() else {
        panic!("{:?}", console.app.overlay);
    };
    assert_eq!(discarded, "lvs.conf");
    let screen = console.screen(100, 30);
    assert!(
        screen.contains("Your unsaved edits of lvs.conf are thrown away.")
            && screen.contains("-# saved after the export"),
        "{screen}"
    );
    console.key(KeyCode::Char('n'));
    assert_eq!(console.app.overlay, None);
    assert_eq!(console.store().latest().unwrap(), 2, "no is no");
    assert!(
        String::from_utf8_lossy(&console.app.buffers().lvs).contains("# not saved"),
        "the edit stays"
    );
}

#[test]
fn the_lb_pane_asks_for_the_selected_servers_checks_and_shows_them_under_it() {
    use lbconsole::health::record::CheckResult;
    use lbconsole::metrics::checker::CheckerReport;
    use lbconsole::operate::Target;

    let mut console = applied_console("pane-checks");
    let effects = console.app.update(Action::RefreshLive, console.now);
    let asked = |effects: &[Effect]| {
        effects.iter().find_map(|effect| match effect {
            Effect::Engine(Request::Observe { checks_of }) => Some(checks_of.clone()),
            _ => None,
        })
    };
    assert_eq!(
        asked(&effects),
        Some(None),
        "no server is asked for out of the pane"
    );
    console.carry_out(effects);

    console.work_in_the_pane();
    console.shift('G');
    let effects = console.app.update(Action::RefreshLive, console.now);
    let web2 = Target {
        director: "web".to_owned(),
        server: "web2".to_owned(),
    };
    assert_eq!(asked(&effects), Some(Some(web2.clone())));
    console.carry_out(effects);

    // The daemon's answer, as checker.sock would give it.
    let live = console.app.live.as_mut().unwrap();
    live.checks.of = Some(web2);
    live.checks.report = Ok(Some(CheckerReport {
        checks: 40,
        quiet_ms: 200,
        stalled: false,
        history: Some(vec![CheckResult {
            at_ms: 1_764_637_205_000,
            passed: false,
            latency_us: 1_000_000,
            reason: Some("connect to 10.0.2.12:8080: timed out".to_owned()),
        }]),
        known: true,
    }));
    let screen = console.pane_screen(120, 40);
    // Under web2, the reason wrapped at the pane's edge.
    assert!(
        screen.contains("» > web2 10.0.2.12:8080 w2 0/0 0c/s         \"\n\"19 ")
            && screen.contains("│      01:00:05 failed   1000.0 ms connect to\"\n\"20 ")
            && screen.contains("│10.0.2.12:8080: timed out "),
        "{screen}"
    );
    console.app.live.as_mut().unwrap().checks.report = Ok(Some(CheckerReport {
        checks: 40,
        quiet_ms: 9_000,
        stalled: true,
        history: None,
        known: false,
    }));
    let screen = console.pane_screen(120, 40);
    assert!(
        screen.contains("│checker stalled: no check completed for 9 s \"\n\" 3 ")
            && screen.contains("│while checks are due"),
        "{screen}"
    );
}
