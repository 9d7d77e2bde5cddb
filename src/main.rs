//! The `lbconsole` command: parses the arguments and wires the real backends
//! to the library, nothing else. What needs `unsafe` is in the library's `sys`
//! modules.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lbconsole::apply::TearDown;
use lbconsole::confirm::{self, ApplyRequest};
use lbconsole::kernel::{Kernel, KernelError, RealKernel};
use lbconsole::operate::{Change, Target};
use lbconsole::plan::overrides::Hold;
use lbconsole::store::{Store, settings};
use lbconsole::text::EscapingWriter;
use lbconsole::{cli, daemon, sandbox, tui};

/// Administration console for a Linux layer-4 load balancer:
/// network, flows, LVS directors and the saved configuration.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Directory holding network.conf, flows.conf and lvs.conf.
    #[arg(
        long,
        global = true,
        env = "LBCONSOLE_CONFIG_DIR",
        default_value = "/etc/lbconsole"
    )]
    config_dir: PathBuf,

    /// Directory for the running configuration, history and state.
    #[arg(
        long,
        global = true,
        env = "LBCONSOLE_STATE_DIR",
        default_value = "/var/lib/lbconsole"
    )]
    state_dir: PathBuf,

    /// Run the console in a throwaway network namespace with demo interfaces
    /// eth0-eth3 and a copy of the example configuration: safe to apply anything.
    /// Where the kernel can run the example, the sandbox is alive: the example's
    /// servers answer, a demo client sends traffic, and the health daemon runs.
    #[arg(long)]
    sandbox: bool,

    /// Without a command: the console.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Convert another load balancer's configuration (keepalived.conf, an
    /// `ipvsadm -S` dump, ldirectord.cf) into lvs.conf, and flows.conf when
    /// the source needs flows; report every construct without an exact
    /// equivalent with its FILE:LINE, then check the result. Exit 0 when the
    /// result is valid, 1 when check finds errors, 2 when FILE cannot be read
    /// or DIR written. Reads no configuration of this box and changes nothing.
    Convert {
        #[arg(long, value_enum)]
        from: lbconsole::convert::Source,
        file: PathBuf,
        /// Write lvs.conf, flows.conf and report.txt into the new directory
        /// DIR (never an existing one) instead of printing them; then
        /// `lbconsole import DIR` saves them.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// keepalived's --config-id: `@ID` lines apply to this instance.
        #[arg(long, value_name = "ID")]
        instance: Option<String>,
    },
    /// Validate the configuration: exit 0 when valid (warnings allowed),
    /// 1 on any error, 2 when the directory cannot be read.
    Check {
        #[arg(long, value_enum, default_value = "text")]
        format: cli::Format,
    },
    /// Program the kernel from the saved configuration (the configuration
    /// directory): network.conf's links, bonds, VLANs, addresses and routes,
    /// lvs.conf's IPVS services, and flows.conf's nftables table and rules.
    /// The whole configuration is validated first; on any failure the changes
    /// already made are undone.
    Apply {
        /// Print the plan, one operation per line (or `no changes`), and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Wait S seconds (10 to 3600) for `lbconsole confirm`, then restore the
        /// previous running configuration; a guard process does it even if this
        /// session dies.
        #[arg(
            long,
            value_name = "S",
            value_parser = clap::value_parser!(u64).range(settings::CONFIRM_TIMEOUTS)
        )]
        confirm_timeout: Option<u64>,
        /// Refuse unless the saved configuration is version N.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// Apply even a configuration with no service, flow or address, which
        /// removes everything lbconsole runs (refused without it).
        #[arg(long)]
        yes: bool,
    },
    /// Keep the apply that waits for confirmation.
    Confirm,
    /// Show the saved and running versions, an apply waiting for confirmation,
    /// and what the kernel is doing: links, bonds and their slaves, addresses,
    /// routes and rules, IPVS services with their real servers, connections and
    /// rates, and the packets each flow has taken.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Show the last check results of one real server instead, as in
        /// web/web1.
        #[arg(long, value_name = "DIRECTOR/SERVER")]
        server: Option<Target>,
    },
    /// Record the configuration directory as the next saved version.
    Save {
        /// Refuse unless the saved configuration is version N.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// Why, shown in the history before the summary of what changed.
        #[arg(long, short)]
        message: Option<String>,
    },
    /// List every saved version: number, time, user, origin, what changed.
    History {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show a unified diff between two configurations: version numbers,
    /// `running` (what the kernel runs) or `saved`.
    Diff {
        #[arg(default_value = "running")]
        from: cli::Side,
        #[arg(default_value = "saved")]
        to: cli::Side,
    },
    /// Make version N the saved configuration again (as a new version).
    Restore {
        version: u64,
        /// Refuse unless the saved configuration is version N.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
    },
    /// Write the saved configuration to FILE, one archive (TOML); `-` is stdout.
    /// FILE is replaced atomically; a device, FIFO or symbolic link is refused.
    Export { file: PathBuf },
    /// Save the configuration of an archive made by `export`, validated first;
    /// `-` reads it from stdin (`lbconsole export - | ssh peer lbconsole import -`).
    /// FILE may be a directory (what `convert --out` wrote): the files it holds
    /// replace the saved ones, and the saved version of a file it lacks stays.
    Import {
        file: PathBuf,
        /// Refuse unless the saved configuration is version N.
        #[arg(long, value_name = "N")]
        expect_version: Option<u64>,
        /// Then apply the saved configuration as `lbconsole apply` does, all or
        /// nothing.
        #[arg(long)]
        apply: bool,
    },
    /// Make the peer's saved lvs.conf and flows.conf this box's, over ssh: show
    /// the diff, then `ssh PEER lbconsole import - --expect-version V` with the
    /// peer's own network.conf (never synced). The ssh command is the `ssh`
    /// setting of lbconsole.toml, or LBCONSOLE_SSH; what the peer runs is
    /// `peer_command`.
    Sync {
        /// The peer; the first `peer` of `service vrrp` in the saved network.conf
        /// by default.
        #[arg(long, value_name = "PEER")]
        to: Option<String>,
        /// Show the diff and send nothing.
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Have the peer apply what it saved.
        #[arg(long)]
        apply: bool,
    },
    /// Take one real server out or put it back, at once and without editing
    /// lvs.conf: the override is kept in the state dir with who set it, when
    /// and why, and stays in force across applies, reloads and reboots.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Apply the saved configuration at boot and keep running (systemd:
    /// dist/lbconsole.service); SIGHUP applies it again.
    Daemon,
    /// The confirm guard that `apply --confirm-timeout` starts.
    #[command(hide = true)]
    Guard {
        #[arg(long)]
        id: String,
    },
    /// Show the event log, newest first: health changes with their reasons,
    /// applies, confirms, rollbacks, overrides and VRRP states. With --json,
    /// an array of objects; with --follow, the last N oldest first and then
    /// each new event as it comes (one JSON object a line with --json), until
    /// interrupted.
    Events {
        /// Keep printing new events.
        #[arg(long, short)]
        follow: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many of the newest events to show.
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Weight 0: no new connection, established ones finish; disabled when
    /// none is left, or at the deadline. Persistence templates of the server
    /// expire rather than keep its clients on it.
    Drain {
        /// DIRECTOR/SERVER, as in web/web1.
        target: Target,
        /// Disable it after S seconds even if connections remain.
        #[arg(long, value_name = "S")]
        deadline: Option<u32>,
        /// Why, kept with the override.
        #[arg(long)]
        note: Option<String>,
    },
    /// Out of IPVS now, whatever its health.
    Disable {
        target: Target,
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove the override: back to the configured weight and to health control.
    Enable { target: Target },
    /// A temporary weight, in force while the server is up.
    Weight {
        target: Target,
        #[arg(value_parser = clap::value_parser!(u16))]
        weight: u16,
        #[arg(long)]
        note: Option<String>,
    },
    /// Every real server that runs: its weights, connections, health and override.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `lbconsole server …`.
async fn server(
    store: &Store,
    command: ServerCommand,
    out: &mut dyn Write,
) -> Result<(), cli::CommandError> {
    let (target, hold, note) = match command {
        ServerCommand::List { json } => {
            let mut kernel = connect().await?;
            return cli::server::list(
                store,
                kernel.ipvs.as_mut().map_err(|e| &*e),
                format(json),
                out,
            )
            .await;
        }
        ServerCommand::Drain {
            target,
            deadline,
            note,
        } => {
            let deadline = deadline.map(|s| lbconsole::store::versions::unix_now() + i64::from(s));
            (target, Some(Hold::Drain { deadline }), note)
        }
        ServerCommand::Disable { target, note } => (target, Some(Hold::Disable), note),
        ServerCommand::Enable { target } => (target, None, None),
        ServerCommand::Weight {
            target,
            weight,
            note,
        } => {
            let weight = u32::from(weight);
            (target, Some(Hold::Weight { weight }), note)
        }
    };
    let mut ipvs = connect().await?.ipvs?;
    let change = Change { target, hold, note };
    cli::server::change(store, &mut ipvs, &change, out).await
}

async fn connect() -> Result<RealKernel, KernelError> {
    Kernel::connect().await
}

/// Logs for the processes nobody watches (daemon, guard): plain lines on stderr,
/// which systemd's journal or the guard's log file keeps.
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The namespace comes first: a user namespace is refused to a process that
    // has threads, and no interface may be created before it.
    let sandbox = if args.sandbox {
        let seed = explicit_config_dir(&args);
        match sandbox::enter(seed.as_deref()) {
            Ok(mut sandbox) => {
                // The console's sandbox is alive; a command's is not.
                if args.command.is_none() && sandbox.can_demo() {
                    eprintln!(
                        "lbconsole: sandbox: starting the example's servers and the health \
                         daemon, which applies the example first..."
                    );
                    sandbox.start_demo();
                }
                Some(sandbox)
            }
            Err(error) => {
                print_error(&error);
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            print_error(&format_args!("cannot start: {error}"));
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args, sandbox))
}

/// `--config-dir` as given on the command line or in the environment, not its default.
fn explicit_config_dir(args: &Args) -> Option<PathBuf> {
    let given = std::env::args_os().any(|a| a.to_string_lossy().starts_with("--config-dir"))
        || std::env::var_os("LBCONSOLE_CONFIG_DIR").is_some();
    given.then(|| args.config_dir.clone())
}

async fn run(mut args: Args, sandbox: Option<sandbox::Sandbox>) -> ExitCode {
    // In the sandbox every command works on its throwaway directories.
    if let Some(sandbox) = &sandbox {
        args.config_dir = sandbox.config_dir.clone();
        args.state_dir = sandbox.state_dir.clone();
    }
    // Everything a command prints may quote a file, the kernel or the
    // environment: it all goes through the escaping writer.
    let mut out = EscapingWriter::new(std::io::stdout().lock());
    let Some(command) = args.command else {
        let paths = tui::engine::Paths {
            config_dir: args.config_dir,
            state_dir: args.state_dir,
        };
        return console(paths, sandbox.as_ref().map(sandbox::Sandbox::notes)).await;
    };
    let mut err = EscapingWriter::new(std::io::stderr().lock());
    let store = match Store::open(&args.config_dir, &args.state_dir) {
        Ok(store) => store,
        Err(error) => {
            print_error(&error);
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Convert {
            from,
            file,
            out: out_dir,
            instance,
        } => {
            let options = lbconsole::convert::Options { instance };
            return match cli::convert::convert(
                from,
                &file,
                out_dir.as_deref(),
                &options,
                &mut out,
                &mut err,
            ) {
                Ok(cli::convert::Converted::Clean) => ExitCode::SUCCESS,
                Ok(cli::convert::Converted::CheckFails) => ExitCode::FAILURE,
                Err(error) => {
                    print_error(&error);
                    ExitCode::from(2)
                }
            };
        }
        Command::Check { format } => {
            return match cli::check(&args.config_dir, format, &mut out) {
                Ok(status) => ExitCode::from(status),
                Err(error) => {
                    print_error(&error);
                    ExitCode::from(cli::EXIT_UNREADABLE)
                }
            };
        }
        Command::Apply {
            dry_run,
            confirm_timeout,
            expect_version,
            yes,
        } => match connect().await {
            Ok(mut kernel) => {
                let request = ApplyRequest {
                    dry_run,
                    confirm_timeout,
                    expect_version,
                    tear_down: if yes {
                        TearDown::Allow
                    } else {
                        TearDown::Refuse
                    },
                    ..ApplyRequest::default()
                };
                cli::apply(
                    &args.config_dir,
                    &args.state_dir,
                    &request,
                    &mut kernel,
                    &mut out,
                    &mut err,
                )
                .await
            }
            Err(error) => Err(error.into()),
        },
        Command::Confirm => cli::confirm(&store, &mut out),
        Command::Status {
            json,
            server: Some(target),
        } => cli::server_checks(&store, &target, format(json), &mut out),
        Command::Status { json, server: None } => match connect().await {
            Ok(mut kernel) => cli::status(&mut kernel, &store, format(json), &mut out).await,
            Err(error) => Err(error.into()),
        },
        Command::Save {
            expect_version,
            message,
        } => cli::save(
            &store,
            expect_version,
            message.as_deref(),
            &mut out,
            &mut err,
        ),
        Command::History { json } => cli::history(&store, format(json), &mut out),
        Command::Diff { from, to } => cli::diff(&store, from, to, &mut out),
        Command::Restore {
            version,
            expect_version,
        } => cli::restore(&store, version, expect_version, &mut out, &mut err),
        Command::Export { file } => cli::export(&store, &file, &mut out, &mut err),
        Command::Import {
            file,
            expect_version,
            apply: false,
        } => cli::import(&store, &file, expect_version, &mut out, &mut err).map(drop),
        // The kernel is reached first: an import must not be saved and then
        // find that it cannot be applied for want of a netlink socket.
        Command::Import {
            file,
            expect_version,
            apply: true,
        } => match connect().await {
            Ok(mut kernel) => {
                cli::import_and_apply(
                    &store,
                    &file,
                    expect_version,
                    &mut kernel,
                    &mut out,
                    &mut err,
                )
                .await
            }
            Err(error) => Err(error.into()),
        },
        Command::Sync { to, dry_run, apply } => {
            cli::sync(&store, to.as_deref(), dry_run, apply, &mut out).await
        }
        Command::Server(command) => server(&store, command, &mut out).await,
        Command::Daemon => {
            log_to_stderr();
            daemon::run(&store, connect).await.map_err(Into::into)
        }
        Command::Guard { id } => {
            log_to_stderr();
            confirm::stand_guard(&store, &id).await.map_err(Into::into)
        }
        Command::Events {
            follow,
            json,
            lines,
        } => {
            let format = format(json);
            if follow {
                cli::follow_events(&args.state_dir, format, lines, &mut out, &mut err).await
            } else {
                cli::events(&args.state_dir, format, lines, &mut out, &mut err)
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&error);
            ExitCode::FAILURE
        }
    }
}

/// `lbconsole: ERROR` on stderr, escaped: errors quote paths, file contents
/// (a TOML error quotes the offending line) and kernel strings.
fn print_error(error: &dyn std::fmt::Display) {
    let _ = writeln!(EscapingWriter::new(std::io::stderr()), "lbconsole: {error}");
}

fn format(json: bool) -> cli::Format {
    if json {
        cli::Format::Json
    } else {
        cli::Format::Text
    }
}

async fn console(paths: tui::engine::Paths, sandbox: Option<sandbox::Notes>) -> ExitCode {
    let kernel = match Kernel::connect().await {
        Ok(kernel) => kernel,
        Err(error) => {
            print_error(&error);
            return ExitCode::FAILURE;
        }
    };
    let options = tui::Options { paths, sandbox };
    match tui::run(options, kernel).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            print_error(&error);
            ExitCode::FAILURE
        }
    }
}
