use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use lbconsole::cli;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Command::Check { format } => {
            match cli::check(&args.config_dir, format, &mut std::io::stdout().lock()) {
                Ok(status) => ExitCode::from(status),
                Err(error) => {
                    eprintln!("lbconsole: {error}");
                    ExitCode::from(cli::EXIT_UNREADABLE)
                }
            }
        }
    }
}
