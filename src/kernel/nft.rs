//! Our nftables table through the `nft` command: JSON batches with `nft -j -f`
//! (each one kernel transaction), listings with `nft -j list table`. The
//! ruleset itself is built by `plan::flows`; this module only sends and reads.

use std::io;
use std::process::Stdio;

use nftables::helper::{self, NftablesError};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use nftables::schema::Nftables;

use super::{Cause, FirewallBackend, KernelError};
use crate::plan::flows::{self, FirewallOp, FlowCounter, TABLE, TableState};

const NFT: &str = "nft";
const LIST_TABLE: [&str; 4] = ["list", "table", "inet", TABLE];
const LIST_CHAINS: [&str; 3] = ["list", "chains", "inet"];

/// The `nft` program on `PATH`.
#[derive(Debug, Clone, Default)]
pub struct NftBackend;

impl NftBackend {
    pub fn new() -> Self {
        Self
    }

    /// `nft -j ARGS` parsed; `None` when our table does not exist.
    async fn list(&self, args: &[&str]) -> Result<Option<Nftables<'static>>, KernelError> {
        match helper::get_current_ruleset_with_args_async(Some(NFT), args).await {
            Ok(listing) => Ok(Some(listing)),
            Err(error) if no_table(&error) => Ok(None),
            Err(error) => Err(KernelError::Observe {
                what: "the nftables table inet lbconsole",
                cause: describe(error),
            }),
        }
    }
}

impl FirewallBackend for NftBackend {
    async fn observe(&mut self) -> Result<Option<TableState>, KernelError> {
        Ok(self
            .list(&LIST_CHAINS)
            .await?
            .and_then(|listing| TableState::from_listing(&listing)))
    }

    async fn counters(&mut self) -> Result<Vec<FlowCounter>, KernelError> {
        Ok(self
            .list(&LIST_TABLE)
            .await?
            .map(|listing| flows::counters(&listing))
            .unwrap_or_default())
    }

    async fn snapshot(&mut self) -> Result<Option<String>, KernelError> {
        let output = Command::new(NFT)
            .args(LIST_TABLE)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|error| unavailable(&error))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ok(Some(String::from_utf8_lossy(&output.stdout).into_owned()))
        } else if stderr.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(KernelError::Observe {
                what: "the nftables table inet lbconsole",
                cause: Cause::Nft(first_lines(&stderr)),
            })
        }
    }

    async fn execute(&mut self, op: &FirewallOp) -> Result<(), KernelError> {
        let result = match op {
            FirewallOp::Install(ruleset) => helper::apply_ruleset_async(&ruleset.batch)
                .await
                .map_err(describe),
            FirewallOp::Restore(listing) => {
                run_script(&format!("{}{listing}", replace_table_script())).await
            }
            FirewallOp::Remove => run_script(&replace_table_script()).await,
        };
        result.map_err(|cause| KernelError::Operation {
            op: op.to_string(),
            cause,
        })
    }
}

/// The text form of [`flows::replace_table`]: afterwards the table is gone,
/// whether or not it was there.
fn replace_table_script() -> String {
    format!("add table inet {TABLE}\ndelete table inet {TABLE}\n")
}

/// Runs an `nft -f -` script: one transaction, all or nothing.
async fn run_script(script: &str) -> Result<(), Cause> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| Cause::Unavailable(unavailable_text(&error)))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|error| Cause::io(&error))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| Cause::io(&error))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Cause::Nft(first_lines(&String::from_utf8_lossy(
            &output.stderr,
        ))))
    }
}

fn no_table(error: &NftablesError) -> bool {
    matches!(error, NftablesError::NftFailed { stderr, .. } if stderr.contains("No such file or directory"))
}

fn unavailable(error: &io::Error) -> KernelError {
    KernelError::Unavailable(unavailable_text(error))
}

fn unavailable_text(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::NotFound {
        "the nft command is not installed (Debian package nftables)".to_owned()
    } else {
        format!("cannot run nft: {error}")
    }
}

fn describe(error: NftablesError) -> Cause {
    match error {
        NftablesError::NftExecution { inner, .. } => Cause::Unavailable(unavailable_text(&inner)),
        NftablesError::NftFailed { stderr, .. } => Cause::Nft(first_lines(&stderr)),
        other => Cause::Other(other.to_string()),
    }
}

/// nft's error text without the echo of the whole input it sometimes adds.
fn first_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        "nft failed without a message".to_owned()
    } else {
        lines.join(" / ")
    }
}
