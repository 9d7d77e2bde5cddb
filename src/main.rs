use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lbconsole::kernel::ipvs::IpvsNetlink;
use lbconsole::kernel::netlink::NetlinkBackend;
use lbconsole::{cli, tui};

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

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut out = std::io::stdout().lock();
    let Some(command) = args.command else {
        return console(args.config_dir, args.state_dir).await;
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

async fn console(config_dir: PathBuf, state_dir: PathBuf) -> ExitCode {
    let network = match NetlinkBackend::connect().await {
        Ok(network) => network,
        Err(error) => {
            eprintln!("lbconsole: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = tui::Options {
        paths: tui::engine::Paths {
            config_dir,
            state_dir,
        },
        sandbox: None,
    };
    match tui::run(options, network, IpvsNetlink::connect().await).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lbconsole: {error}");
            ExitCode::FAILURE
        }
    }
}
