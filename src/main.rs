use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lbconsole::kernel::ipvs::IpvsNetlink;
use lbconsole::kernel::netlink::NetlinkBackend;
use lbconsole::{cli, sandbox, tui};

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
    #[arg(long)]
    sandbox: bool,

    /// Without a command: the console.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration: exit 0 when valid (warnings allowed),
    /// 1 on any error, 2 when the directory cannot be read.
    Check {
        #[arg(long, value_enum, default_value = "text")]
        format: cli::Format,
    },
    /// Program the kernel from the configuration directory (today: network.conf's
    /// links, bonds, VLANs, addresses and routes, and lvs.conf's IPVS services;
    /// flows come next).
    /// The whole configuration is validated first; on any failure the changes
    /// already made are undone.
    Apply {
        /// Print the plan, one operation per line (or `no changes`), and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what the kernel is doing: links, bonds and their slaves, addresses,
    /// routes, and IPVS services with their real servers, connections and rates.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The namespace comes first: a user namespace is refused to a process that
    // has threads, and no interface may be created before it.
    let sandbox = if args.sandbox {
        let seed = explicit_config_dir(&args);
        match sandbox::enter(seed.as_deref()) {
            Ok(sandbox) => Some(sandbox),
            Err(error) => {
                eprintln!("lbconsole: {error}");
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
            eprintln!("lbconsole: cannot start: {error}");
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
    let mut out = std::io::stdout().lock();
    let Some(command) = args.command else {
        let paths = tui::engine::Paths {
            config_dir: args.config_dir,
            state_dir: args.state_dir,
        };
        return console(paths, sandbox.as_ref().map(|s| s.description.clone())).await;
    };
    let result = match command {
        Command::Check { format } => {
            return match cli::check(&args.config_dir, format, &mut out) {
                Ok(status) => ExitCode::from(status),
                Err(error) => {
                    eprintln!("lbconsole: {error}");
                    ExitCode::from(cli::EXIT_UNREADABLE)
                }
            };
        }
        Command::Apply { dry_run } => match NetlinkBackend::connect().await {
            Ok(mut network) => {
                let mut err = std::io::stderr().lock();
                let ipvs = IpvsNetlink::connect().await;
                cli::apply(
                    &args.config_dir,
                    &args.state_dir,
                    dry_run,
                    &mut network,
                    ipvs,
                    &mut out,
                    &mut err,
                )
                .await
            }
            Err(error) => Err(error.into()),
        },
        Command::Status { json } => match NetlinkBackend::connect().await {
            Ok(mut network) => {
                let format = if json {
                    cli::Format::Json
                } else {
                    cli::Format::Text
                };
                let ipvs = IpvsNetlink::connect().await;
                cli::status(&mut network, ipvs, &args.state_dir, format, &mut out).await
            }
            Err(error) => Err(error.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lbconsole: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn console(paths: tui::engine::Paths, sandbox: Option<String>) -> ExitCode {
    let network = match NetlinkBackend::connect().await {
        Ok(network) => network,
        Err(error) => {
            eprintln!("lbconsole: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = tui::Options { paths, sandbox };
    match tui::run(options, network, IpvsNetlink::connect().await).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lbconsole: {error}");
            ExitCode::FAILURE
        }
    }
}
