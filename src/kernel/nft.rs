//! Our nftables table through the `nft` command: batches printed as nft text
//! (`plan::nft_text`) to `nft -f -`, each one kernel transaction; listings
//! with `nft -j list table`. The ruleset itself is built by `plan::flows`;
//! this module only sends and reads.
//!
//! What our last apply put in the table is recorded (each object's hashes)
//! with the kernel's ruleset generation right after it: nf_tables moves that
//! number on every committed change to any table of the namespace, so while
//! it has not moved the record is the truth, and planning need not read the
//! table at all. Once it has moved (a hand edit, another program, a
//! transaction we could not tell apart from someone else's) the record is not
//! used: the next apply replaces the table whole.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;

use nftables::helper::{self, NftablesError};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use nftables::schema::Nftables;

use super::{Cause, FirewallBackend, KernelError};
use crate::kernel::nlwire::{self, Body, NLM_F_REQUEST, NLMSG_HDRLEN};
use crate::plan::flows::{self, FirewallOp, FlowCounter, ObjectHashes, TABLE, TableState};
use crate::plan::nft_text;
use crate::store::atomic;

const NFT: &str = "nft";
const LIST_TABLE: [&str; 4] = ["list", "table", "inet", TABLE];
const LIST_CHAINS: [&str; 3] = ["list", "chains", "inet"];
/// Records live in tmpfs: the kernel's generations start again at boot.
const RECORD_DIR: &str = "/run/lbconsole";

/// The `nft` program on `PATH`.
#[derive(Debug, Clone)]
pub struct NftBackend {
    record_dir: PathBuf,
}

impl Default for NftBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// What our last apply left in this network namespace's table.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    /// `/proc/sys/kernel/random/boot_id`: a record of an earlier boot is void.
    boot: String,
    /// The network namespace's cookie: a namespace that reuses a gone one's
    /// inode number has another.
    namespace: u64,
    /// The ruleset generation right after our transaction.
    generation: u32,
    objects: ObjectHashes,
}

impl NftBackend {
    pub fn new() -> Self {
        Self {
            record_dir: PathBuf::from(RECORD_DIR),
        }
    }

    /// One record per network namespace, by its inode: each has its own
    /// ruleset and generations.
    fn record_path(&self) -> io::Result<PathBuf> {
        let namespace = std::fs::metadata("/proc/self/ns/net")?.ino();
        Ok(self.record_dir.join(format!("nft-{namespace}.json")))
    }

    /// The record, if it still describes the kernel's table: same boot, and
    /// no change committed since.
    fn trusted_record(&self, now: Generation) -> Option<Record> {
        let text = std::fs::read(self.record_path().ok()?).ok()?;
        let record: Record = serde_json::from_slice(&text).ok()?;
        (record.generation == now.generation
            && record.namespace == now.namespace
            && record.boot == boot_id()?)
        .then_some(record)
    }

    /// Records `objects` as the table's content when `after` is the very next
    /// generation from `before` (our transaction and no other); otherwise
    /// makes sure no record is left to be trusted.
    fn record(
        &self,
        before: Option<Generation>,
        after: Option<Generation>,
        objects: Option<&ObjectHashes>,
    ) {
        let written = match (before, after, objects, boot_id()) {
            (Some(before), Some(after), Some(objects), Some(boot))
                if after.namespace == before.namespace
                    && after.generation == before.generation.wrapping_add(1) =>
            {
                self.write_record(&Record {
                    boot,
                    namespace: after.namespace,
                    generation: after.generation,
                    objects: objects.clone(),
                })
            }
            _ => Err(io::Error::other("no generation to trust")),
        };
        if let Err(error) = written {
            tracing::debug!(%error, "the next apply of the flows will replace the table whole");
            if let Ok(path) = self.record_path() {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Written as the store writes: a new file renamed over the old, never
    /// through whatever someone put at the record's name.
    fn write_record(&self, record: &Record) -> io::Result<()> {
        atomic::create_dir_all(&self.record_dir)?;
        let bytes = serde_json::to_vec(record)?;
        atomic::write_file(&self.record_path()?, &bytes, atomic::Scratch::Unrecorded)
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
        let generation = ruleset_generation();
        if let Ok(now) = generation
            && let Some(record) = self.trusted_record(now)
        {
            return Ok(Some(TableState::known(record.objects, now.generation)));
        }
        if let Err(error) = generation {
            tracing::debug!(%error, "cannot read the nftables ruleset generation");
        }
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

    async fn execute(&mut self, op: &FirewallOp) -> Result<(), KernelError> {
        let failed = |cause| KernelError::Operation {
            op: op.to_string(),
            cause,
        };
        let before = ruleset_generation().ok();
        if let FirewallOp::Update(update) = op
            && before.map(|now| now.generation) != Some(update.generation)
        {
            return Err(failed(Cause::Other(
                "the nftables ruleset changed after the apply was planned; apply again".to_owned(),
            )));
        }
        let (result, objects) = match op {
            FirewallOp::Install(ruleset) => (send(&ruleset.batch).await, Some(&ruleset.objects)),
            FirewallOp::Update(update) => {
                (send(&update.batch).await, Some(&update.ruleset.objects))
            }
            FirewallOp::Remove => {
                let batch = Nftables {
                    objects: flows::replace_table().into(),
                };
                (send(&batch).await, None)
            }
        };
        let after = ruleset_generation().ok();
        match result {
            Ok(()) => self.record(before, after, objects),
            // Refused, nothing changed: the record stays as good as it was.
            Err(_) if before == after => {}
            Err(_) => self.record(None, None, None),
        }
        result.map_err(failed)
    }
}

/// One batch, one transaction: as nft text, which nft parses faster than the
/// same batch as JSON; as JSON should the printer not know a command.
async fn send(batch: &Nftables<'_>) -> Result<(), Cause> {
    match nft_text::print(batch) {
        Ok(script) => run_script(&script).await,
        Err(unprintable) => {
            tracing::debug!(%unprintable, "sending the batch as JSON");
            helper::apply_ruleset_async(batch).await.map_err(describe)
        }
    }
}

/// `/proc/sys/kernel/random/boot_id`, which is new at every boot.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
}

/// nfnetlink's subsystem of nf_tables and its "get generation" request.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: usize = 1;

/// Which ruleset, at which point of its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Generation {
    /// The network namespace's cookie.
    namespace: u64,
    /// nf_tables' generation id, moved on by one at every commit.
    generation: u32,
}

/// The nf_tables ruleset generation of this network namespace
/// (`NFT_MSG_GETGEN`), which every committed transaction moves on by one.
fn ruleset_generation() -> io::Result<Generation> {
    use rtnetlink::sys::{Socket, protocols::NETLINK_NETFILTER};
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    let namespace = crate::sys::netns_cookie(&socket)?;
    let mut request = Vec::with_capacity(NLMSG_HDRLEN + 4);
    let length = (NLMSG_HDRLEN + 4) as u32;
    request.extend_from_slice(&length.to_ne_bytes());
    request.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
    request.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    request.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    // struct nfgenmsg: AF_UNSPEC, NFNETLINK_V0, resource id 0.
    request.extend_from_slice(&[0, 0, 0, 0]);
    socket.send(&request, 0)?;
    let mut answer = Vec::with_capacity(4096);
    socket.recv(&mut answer, 0)?;
    for frame in nlwire::frames(&answer) {
        let frame = frame.map_err(|error| io::Error::other(error.0))?;
        match frame.body {
            Body::Data(payload) => {
                // nfgenmsg is as long as a generic netlink header; then
                // NFTA_GEN_ID, a big-endian u32.
                let attributes = nlwire::genl_table::<{ NFTA_GEN_ID + 1 }>(payload)
                    .map_err(|error| io::Error::other(error.0))?;
                if let Some(id) = attributes[NFTA_GEN_ID].and_then(|id| id.get(..4)) {
                    return Ok(Generation {
                        namespace,
                        generation: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
                    });
                }
            }
            Body::Refused(refusal) => {
                return Err(io::Error::from_raw_os_error(refusal.errno));
            }
            _ => {}
        }
    }
    Err(io::Error::other(
        "the kernel's answer has no ruleset generation",
    ))
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
