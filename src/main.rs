use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lbconsole::cli;
use lbconsole::kernel::Kernel;

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

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration: exit 0 when valid (warnings allowed),
    /// 1 on any error, 2 when the directory cannot be read.
    Check {
        #[arg(long, value_enum, default_value = "text")]
        format: cli::Format,
    },
    /// Program the kernel from the configuration directory: network.conf's links,
    /// bonds, VLANs, addresses and routes, lvs.conf's IPVS services, and
    /// flows.conf's nftables table and routing rules.
    /// The whole configuration is validated first; on any failure the changes
    /// already made are undone.
    Apply {
        /// Print the plan, one operation per line (or `no changes`), and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what the kernel is doing: links, bonds and their slaves, addresses,
    /// routes and rules, IPVS services with their real servers, connections and
    /// rates, and the packets each flow has taken.
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
    let result = match args.command {
        Command::Check { format } => {
            return match cli::check(&args.config_dir, format, &mut out) {
                Ok(status) => ExitCode::from(status),
                Err(error) => {
                    eprintln!("lbconsole: {error}");
                    ExitCode::from(cli::EXIT_UNREADABLE)
                }
            };
        }
        Command::Apply { dry_run } => match Kernel::connect().await {
            Ok(mut kernel) => {
                let mut err = std::io::stderr().lock();
                cli::apply(
                    &args.config_dir,
                    &args.state_dir,
                    dry_run,
                    &mut kernel,
                    &mut out,
                    &mut err,
                )
                .await
            }
            Err(error) => Err(error.into()),
        },
        Command::Status { json } => match Kernel::connect().await {
            Ok(mut kernel) => {
                let format = if json {
                    cli::Format::Json
                } else {
                    cli::Format::Text
                };
                cli::status(&mut kernel, &args.state_dir, format, &mut out).await
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
