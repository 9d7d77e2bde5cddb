//! IPVS over generic netlink: see kernel/mod.rs for the contract.
//!
//! The messages: the generic netlink controller's (resolving the family,
//! `family.rs`) built and read with neli; the IPVS family's own
//! (`consts.rs`, `encode.rs`, `decode.rs`, over `kernel::nlwire`) written and
//! read directly, as a big table's tens of thousands of them cost
//! several times as much through neli's typed attributes in the unoptimised
//! builds the lab and the benchmark run. They travel over netlink-sys's tokio
//! socket (`rtnetlink::sys`, which `netlink.rs` uses too), because batching
//! needs what neli's socket layer does not offer: neli's router sends one
//! message per write and routes every answer through a channel from a task of
//! its own, and neli's tokio socket writes one `Nlmsghdr` at a time.
//! netlink-sys writes and reads raw bytes, so many messages go in one `send`.
//!
//! Batching. The kernel carries out the messages of one write in order, each
//! completely, and queues its answers in that order. [`IpvsNetlink::execute`]
//! puts up to [`IpvsNetlink::batch_limit`] messages, each with its own sequence
//! number, into one write; only the last asks for an acknowledgement
//! (`NLM_F_ACK`), the kernel answers the others only when it refuses them (an
//! `NLMSG_ERROR` always comes back). Once the last one's answer is read, every
//! refusal of the batch has been read before it: the messages without one were
//! carried out. So a batch of a few hundred changes costs one write and,
//! unless something is refused, one read.
//!
//! Each operation stays all or nothing. An operation of one message is so by
//! itself. An `AddService` is a service message and one per destination,
//! possibly over several writes: once the kernel refuses one of them, its
//! remaining messages are not sent, and what the others did is undone (the new
//! service deleted, or the destinations it added to a service that was already
//! there deleted) before anything else is sent. So that the operations after
//! it in the same write meet the table the contract promises, an operation
//! that touches the service of an `AddService` in the write starts a new
//! write; operations on other services do not depend on it.
//!
//! The acknowledgements and refusals of a batch must fit into the socket's
//! receive buffer, which the kernel fills while it carries out the write: were
//! it full, it would drop answers (`ENOBUFS`). The buffer is enlarged at
//! connect, as far as `net.core.rmem_max` allows, and the batch size is derived
//! from its actual size. Should answers be lost all the same, the operations of
//! that batch are reported as failed (they may have been carried out in part)
//! and the later ones as not attempted.
//!
//! The family: resolving `IPVS` makes the kernel load `ip_vs` by itself where
//! modules can be loaded (Debian's `ip_vs.ko` has the alias
//! `net-pf-16-proto-16-family-IPVS`); a missing family means it could not.

pub(super) mod consts;
pub(super) mod decode;
mod encode;
pub(super) mod family;
#[cfg(test)]
pub(super) mod fixtures;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;

use rtnetlink::sys::protocols::NETLINK_GENERIC;
use rtnetlink::sys::{AsyncSocket, AsyncSocketExt, TokioSocket};
use serde::Serialize;

use self::consts::cmd;
use self::decode::ServiceEntry;
use self::encode::Message;
use self::sync::{SyncDaemon, SyncRole};
use super::nlwire::{Body, DecodeError, EncodeError, Refusal, frames};
use super::{Cause, DestStatus, IpvsBackend, IpvsObservation, KernelError, ServiceStatus};
use crate::plan::ipvs::{
    DestSettings, IpvsOp, IpvsOutline, IpvsState, Service, ServiceKey, ServiceSettings,
};

/// Room for one answer in the receive buffer, by the kernel's count (an skb's
/// true size): measured on Debian's 6.1, an acknowledgement and a refusal take
/// 768 bytes each; twice that, as a margin for refusals with more to say.
const ANSWER_ROOM: usize = 1536;
/// The most messages in one write; with each under 256 bytes, a batch stays
/// well below the default send buffer (`net.core.wmem_default`, 208 KiB).
const MAX_BATCH: usize = 256;
/// The receive buffer asked for; the kernel caps it at twice `rmem_max`.
const RECEIVE_BUFFER: i32 = 4 << 20;
/// Large enough for any datagram the kernel sends: a dump's part is at most
/// 32 KiB.
const DATAGRAM: usize = 64 << 10;

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const ERANGE: i32 = 34;

/// IPVS's version code (`1.2.1` is `0x010201`) and its connection hash table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpvsInfo {
    pub version: u32,
    pub connection_table_size: u32,
}

impl IpvsInfo {
    /// `1.2.1`, as `ipvsadm` shows it.
    pub fn version_text(&self) -> String {
        let [_, major, minor, patch] = self.version.to_be_bytes();
        format!("{major}.{minor}.{patch}")
    }
}

/// The connection timeouts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// The IPVS generic netlink connection of this network namespace.
pub struct IpvsNetlink {
    socket: TokioSocket,
    family: u16,
    next_seq: u32,
    batch_limit: usize,
    datagram: Vec<u8>,
}

/// Why an exchange with the kernel did not give an answer to act on.
#[derive(Debug)]
enum Failure {
    Refused(Refusal),
    /// The socket failed, or the answer could not be read.
    Broken(Cause),
}

impl Failure {
    fn cause(&self) -> Cause {
        match self {
            Self::Refused(refusal) => refusal.clone().into(),
            Self::Broken(cause) => cause.clone(),
        }
    }
}

impl From<EncodeError> for Failure {
    fn from(e: EncodeError) -> Self {
        Self::Broken(Cause::Other(e.to_string()))
    }
}

impl From<DecodeError> for Failure {
    fn from(e: DecodeError) -> Self {
        Self::Broken(Cause::Other(e.to_string()))
    }
}

impl IpvsNetlink {
    /// Opens a generic netlink socket and resolves the IPVS family.
    pub async fn connect() -> Result<Self, KernelError> {
        let connect = |e: std::io::Error| KernelError::Connect(Cause::io(&e));
        let mut socket = TokioSocket::new(NETLINK_GENERIC).map_err(connect)?;
        socket.socket_mut().bind_auto().map_err(connect)?;
        let raw = socket.socket_ref();
        // Extended acks add the kernel's own words to an errno; a refusal
        // echoing only the request's header keeps refusals small in the
        // receive buffer. Kernels without them still answer with the errno.
        let _ = raw.set_ext_ack(true);
        let _ = raw.set_cap_ack(true);
        let _ = raw.set_rx_buf_sz(RECEIVE_BUFFER);
        let receive_buffer = raw.get_rx_buf_sz().map_err(connect)?;
        let mut ipvs = Self {
            socket,
            family: 0,
            next_seq: 1,
            batch_limit: (receive_buffer / ANSWER_ROOM).clamp(1, MAX_BATCH),
            datagram: Vec::with_capacity(DATAGRAM),
        };
        let seq = ipvs.take_seqs(1);
        let mut request = Vec::new();
        family::family_request(&mut request, seq)
            .map_err(|e| KernelError::Connect(Cause::Other(e.to_string())))?;
        let mut family = None;
        let answer = ipvs
            .ask(&request, seq, |payload| {
                family = Some(family::parse_family_id(payload)?);
                Ok(())
            })
            .await;
        match (answer, family) {
            (Ok(()), Some(family)) => {
                ipvs.family = family;
                Ok(ipvs)
            }
            (Err(Failure::Refused(refusal)), _) if refusal.errno == ENOENT => {
                Err(KernelError::Unavailable(
                    "IPVS is not available: the kernel has no IPVS netlink family, so the \
                     ip_vs kernel module is not loaded and could not be loaded on demand \
                     (load it with `modprobe ip_vs` as root)"
                        .to_owned(),
                ))
            }
            (Ok(()), None) => Err(KernelError::Connect(Cause::Other(
                "the kernel did not say which netlink family IPVS is".to_owned(),
            ))),
            (Err(failure), _) => Err(KernelError::Connect(
                failure
                    .cause()
                    .within("cannot look up the IPVS netlink family: ", ""),
            )),
        }
    }

    /// How many messages go in one write.
    pub fn batch_limit(&self) -> usize {
        self.batch_limit
    }

    /// Deletes every service (`ipvsadm -C`).
    pub async fn flush(&mut self) -> Result<(), KernelError> {
        self.command(|out, family, seq| encode::request(out, family, seq, cmd::FLUSH))
            .await
            .map_err(|failure| KernelError::Operation {
                op: "flush the IPVS table".to_owned(),
                cause: describe_failure(&failure),
            })
    }

    /// The IPVS version and connection table size.
    pub async fn info(&mut self) -> Result<IpvsInfo, KernelError> {
        let mut info = None;
        self.query(cmd::GET_INFO, |payload| {
            info = Some(decode::parse_info(payload)?);
            Ok(())
        })
        .await
        .map_err(|failure| observe_error("the IPVS information", &failure))?;
        let (version, connection_table_size) = info.ok_or_else(|| {
            observe_error(
                "the IPVS information",
                &Failure::Broken(Cause::Other("the kernel sent no answer".to_owned())),
            )
        })?;
        Ok(IpvsInfo {
            version,
            connection_table_size,
        })
    }

    /// The TCP, TCP FIN and UDP connection timeouts (`ipvsadm -L --timeout`).
    pub async fn timeouts(&mut self) -> Result<Timeouts, KernelError> {
        let mut timeouts = None;
        self.query(cmd::GET_CONFIG, |payload| {
            timeouts = Some(decode::parse_timeouts(payload)?);
            Ok(())
        })
        .await
        .map_err(|failure| observe_error("the IPVS timeouts", &failure))?;
        let (tcp, tcp_fin, udp) = timeouts.ok_or_else(|| {
            observe_error(
                "the IPVS timeouts",
                &Failure::Broken(Cause::Other("the kernel sent no answer".to_owned())),
            )
        })?;
        Ok(Timeouts { tcp, tcp_fin, udp })
    }

    /// Sets the connection timeouts in seconds (`ipvsadm --set`); 0 keeps one
    /// as it is.
    pub async fn set_timeouts(
        &mut self,
        tcp: u32,
        tcp_fin: u32,
        udp: u32,
    ) -> Result<(), KernelError> {
        let op = || format!("set the IPVS timeouts to tcp {tcp}s, tcp-fin {tcp_fin}s, udp {udp}s");
        self.command(|out, family, seq| {
            encode::timeouts_request(out, family, seq, (tcp, tcp_fin, udp))
        })
        .await
        .map_err(|failure| KernelError::Operation {
            op: op(),
            cause: describe_failure(&failure),
        })
    }

    /// One dump of the services, then one dump of the destinations of each
    /// service `wanted` keeps (the kernel has no dump of all destinations);
    /// the others are left out, but for their settings.
    async fn observe_where(
        &mut self,
        wanted: impl Fn(&ServiceKey) -> bool,
    ) -> Result<(IpvsObservation, BTreeMap<ServiceKey, ServiceSettings>), KernelError> {
        let what = "the IPVS table";
        let mut entries = Vec::new();
        self.dump(
            |out, family, seq| encode::dump_request(out, family, seq, None),
            |payload| {
                entries.extend(decode::parse_service(payload)?);
                Ok(())
            },
        )
        .await
        .map_err(|failure| observe_error(what, &failure))?;
        let settings = entries
            .iter()
            .map(|entry| (entry.key, entry.settings.clone()))
            .collect();
        let mut observation = IpvsObservation::default();
        for entry in entries.into_iter().filter(|entry| wanted(&entry.key)) {
            let mut destinations = Vec::new();
            let family = entry.key.family();
            let key = entry.key;
            self.dump(
                |out, family, seq| encode::dump_request(out, family, seq, Some(&key)),
                |payload| {
                    destinations.extend(decode::parse_dest(payload, family)?);
                    Ok(())
                },
            )
            .await
            .map_err(|failure| observe_error(what, &failure))?;
            destinations.sort_by_key(|d: &DestStatus| (d.address, d.port));
            let ServiceEntry {
                key,
                settings,
                flags,
                stats,
            } = entry;
            observation.state.services.insert(
                key,
                Service {
                    settings: settings.clone(),
                    destinations: destinations
                        .iter()
                        .map(|d| {
                            (
                                d.key(),
                                DestSettings {
                                    forward: d.forward,
                                    weight: d.weight,
                                },
                            )
                        })
                        .collect::<BTreeMap<_, _>>(),
                },
            );
            observation.services.push(ServiceStatus {
                key,
                scheduler: settings.scheduler,
                flags,
                timeout: settings.timeout,
                stats,
                destinations,
            });
        }
        observation.services.sort_by_key(|s| s.key);
        Ok((observation, settings))
    }

    fn take_seqs(&mut self, count: usize) -> u32 {
        let first = self.next_seq;
        // Sequence numbers wrap; the socket never has 2^32 in flight.
        self.next_seq = self.next_seq.wrapping_add(count as u32);
        first
    }

    /// A request without data in the answer, encoded by `encode`.
    async fn command(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>, u16, u32) -> Result<(), EncodeError>,
    ) -> Result<(), Failure> {
        let seq = self.take_seqs(1);
        let mut request = Vec::new();
        encode(&mut request, self.family, seq)?;
        self.ask(&request, seq, |_| Ok(())).await
    }

    /// A request without arguments whose answer is one message, given to `each`.
    async fn query(
        &mut self,
        command: u8,
        each: impl FnMut(&[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), Failure> {
        let seq = self.take_seqs(1);
        let mut request = Vec::new();
        encode::request(&mut request, self.family, seq, command)?;
        self.ask(&request, seq, each).await
    }

    /// Sends one request that asks for an acknowledgement, gives the payload of
    /// each data message answering it to `each`, and returns at the
    /// acknowledgement.
    async fn ask(
        &mut self,
        request: &[u8],
        seq: u32,
        mut each: impl FnMut(&[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), Failure> {
        self.send(request).await?;
        let mut unreadable = None;
        loop {
            let datagram = self.receive().await?;
            for frame in frames(datagram) {
                let frame = frame?;
                if frame.seq != seq {
                    continue;
                }
                match frame.body {
                    Body::Data(payload) => {
                        if let Err(e) = each(payload) {
                            unreadable.get_or_insert(e);
                        }
                    }
                    Body::Ack | Body::Done(None) => {
                        return unreadable.map_or(Ok(()), |e| Err(e.into()));
                    }
                    Body::Refused(refusal) | Body::Done(Some(refusal)) => {
                        return Err(Failure::Refused(refusal));
                    }
                    Body::Other => {}
                }
            }
        }
    }

    /// A dump (the request written by `encode`): every service, every
    /// destination of one, the sync daemons. Each message is given to `each`; the dump is read to its end even when one
    /// cannot be read, so that the next dump may start (the kernel runs one at
    /// a time per socket).
    async fn dump(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>, u16, u32) -> Result<(), EncodeError>,
        mut each: impl FnMut(&[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), Failure> {
        let seq = self.take_seqs(1);
        let mut request = Vec::new();
        encode(&mut request, self.family, seq)?;
        self.send(&request).await?;
        let mut unreadable = None;
        loop {
            let datagram = self.receive().await?;
            for frame in frames(datagram) {
                let frame = frame?;
                if frame.seq != seq {
                    continue;
                }
                match frame.body {
                    Body::Data(payload) => {
                        if unreadable.is_none()
                            && let Err(e) = each(payload)
                        {
                            unreadable = Some(e);
                        }
                    }
                    Body::Done(None) => return unreadable.map_or(Ok(()), |e| Err(e.into())),
                    Body::Refused(refusal) | Body::Done(Some(refusal)) => {
                        return Err(Failure::Refused(refusal));
                    }
                    Body::Ack | Body::Other => {}
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let sent = self.socket.send(bytes).await.map_err(|e| {
            Failure::Broken(Cause::io(&e).within("cannot send to the kernel: ", ""))
        })?;
        if sent != bytes.len() {
            return Err(Failure::Broken(Cause::Other(format!(
                "the kernel took {sent} of {} bytes",
                bytes.len()
            ))));
        }
        Ok(())
    }

    /// The next datagram from the kernel.
    async fn receive(&mut self) -> Result<&[u8], Failure> {
        self.datagram.clear();
        self.socket.recv(&mut self.datagram).await.map_err(|e| {
            Failure::Broken(Cause::io(&e).within("cannot read the kernel's answer: ", ""))
        })?;
        Ok(&self.datagram)
    }

    /// Sends `batch` (one message per sequence number from `first`, `count` of
    /// them, the last asking for an acknowledgement) in one write and reads the
    /// answers up to the last one's: each message's refusal, or `None` where it
    /// was carried out.
    async fn exchange(
        &mut self,
        batch: &[u8],
        first: u32,
        count: usize,
    ) -> Result<Vec<Option<Refusal>>, Failure> {
        let mut refusals = vec![None; count];
        if count == 0 {
            return Ok(refusals);
        }
        self.send(batch).await?;
        loop {
            let datagram = self.receive().await?;
            let mut finished = false;
            for frame in frames(datagram) {
                let frame = frame?;
                // Answers of an earlier exchange that ended early are stale.
                let index = frame.seq.wrapping_sub(first) as usize;
                if index >= count {
                    continue;
                }
                match frame.body {
                    Body::Ack => finished |= index == count - 1,
                    Body::Refused(refusal) => {
                        refusals[index] = Some(refusal);
                        finished |= index == count - 1;
                    }
                    Body::Data(_) | Body::Done(_) | Body::Other => {}
                }
            }
            if finished {
                return Ok(refusals);
            }
        }
    }

    /// Sends `messages` in batches and returns the first refusal, described.
    async fn send_all(&mut self, messages: &[Message<'_>]) -> Result<(), Cause> {
        for chunk in messages.chunks(self.batch_limit) {
            let first = self.take_seqs(chunk.len());
            let batch =
                encode_batch(self.family, first, chunk).map_err(|e| Cause::Other(e.to_string()))?;
            let refusals = self
                .exchange(&batch, first, chunk.len())
                .await
                .map_err(|failure| failure.cause())?;
            if let Some((message, refusal)) = chunk
                .iter()
                .zip(refusals)
                .find_map(|(message, refusal)| refusal.map(|r| (message, r)))
            {
                let reason = describe_refusal(message, &refusal);
                return Err(match message.dest() {
                    Some(dest) => reason.within(format!("real server {dest}: "), ""),
                    None => reason,
                });
            }
        }
        Ok(())
    }

    /// The verdict on a finished operation: `Ok`, or its first refusal, after
    /// undoing what its other messages did.
    async fn conclude(&mut self, steps: &[Step<'_>], outcomes: &[Outcome]) -> Result<(), Cause> {
        let Some((index, refusal)) = outcomes.iter().enumerate().find_map(|(i, o)| match o {
            Outcome::Refused(r) => Some((i, r)),
            _ => None,
        }) else {
            return Ok(());
        };
        let reason = describe_refusal(&steps[index].message, refusal);
        let [first, ..] = steps else {
            return Err(reason);
        };
        let Message::NewService(key, _) = first.message else {
            return Err(reason);
        };
        if let Some(dest) = steps[index].message.dest() {
            // A destination was refused: the new service goes again, and its
            // destinations with it.
            let reason = reason.within(format!("real server {dest}: "), "");
            return Err(match self.send_all(&[Message::DelService(key)]).await {
                Ok(()) => reason.within("", " (the new service was deleted again)"),
                Err(undo) => reason.within(
                    "",
                    format!(" (deleting the new service failed too: {undo})"),
                ),
            });
        }
        // The service was refused (it exists, most likely): its destinations
        // may have gone into the service already there.
        let added: Vec<Message<'_>> = steps
            .iter()
            .zip(outcomes)
            .filter(|(_, outcome)| matches!(outcome, Outcome::Done))
            .filter_map(|(step, _)| step.message.dest().map(|dest| Message::DelDest(key, dest)))
            .collect();
        if added.is_empty() {
            return Err(reason);
        }
        Err(match self.send_all(&added).await {
            Ok(()) => reason.within(
                "",
                format!(
                    " ({} real server(s) it added to the existing service were removed again)",
                    added.len()
                ),
            ),
            Err(undo) => reason.within(
                "",
                format!(
                    " (removing the {} real server(s) it added to the existing service \
                     failed: {undo})",
                    added.len()
                ),
            ),
        })
    }
}

impl IpvsBackend for IpvsNetlink {
    async fn observe(&mut self) -> Result<IpvsObservation, KernelError> {
        Ok(self.observe_where(|_| true).await?.0)
    }

    /// The one dump of the services, then only the destinations of `keys`:
    /// one dump each instead of one per service in the table.
    async fn observe_services(
        &mut self,
        keys: &BTreeSet<ServiceKey>,
    ) -> Result<IpvsState, KernelError> {
        Ok(self.observe_where(|key| keys.contains(key)).await?.0.state)
    }

    /// As `observe_services`, with the settings the dump of the services gave.
    async fn observe_outline(
        &mut self,
        keys: &BTreeSet<ServiceKey>,
    ) -> Result<IpvsOutline, KernelError> {
        let (observation, settings) = self.observe_where(|key| keys.contains(key)).await?;
        Ok(IpvsOutline {
            settings,
            detail: observation.state,
        })
    }

    async fn execute(&mut self, ops: &[IpvsOp]) -> Vec<Result<(), KernelError>> {
        let (steps, ranges) = plan_steps(ops);
        let mut outcomes = vec![Outcome::Pending; steps.len()];
        // Operations with a refused message: their later messages are not sent.
        let mut refused = vec![false; ops.len()];
        let mut results: Vec<Result<(), KernelError>> = Vec::with_capacity(ops.len());
        let mut next = 0;
        while results.len() < ops.len() {
            let (members, after) = next_batch(&steps, &ranges, &refused, next, self.batch_limit);
            next = after;
            let first = self.take_seqs(members.len());
            let chosen: Vec<Message<'_>> = members.iter().map(|&i| steps[i].message).collect();
            let answer = match encode_batch(self.family, first, &chosen) {
                Ok(batch) => self.exchange(&batch, first, members.len()).await,
                Err(e) => Err(e.into()),
            };
            let refusals = match answer {
                Ok(refusals) => refusals,
                Err(failure) => {
                    lost(ops, &ranges, after, failure.cause(), &mut results);
                    return results;
                }
            };
            for (&index, refusal) in members.iter().zip(refusals) {
                outcomes[index] = match refusal {
                    Some(refusal) => {
                        refused[steps[index].op] = true;
                        Outcome::Refused(refusal)
                    }
                    None => Outcome::Done,
                };
            }
            // Every operation whose messages have all been answered, and one
            // refused part way, whose other messages are not sent: concluded
            // (and undone) before anything else goes to the kernel.
            while let Some(range) = ranges.get(results.len()) {
                let op = results.len();
                if range.end > next && !refused[op] {
                    break;
                }
                let verdict = self
                    .conclude(&steps[range.clone()], &outcomes[range.clone()])
                    .await;
                results.push(verdict.map_err(|cause| KernelError::Operation {
                    op: ops[op].to_string(),
                    cause,
                }));
            }
        }
        results
    }

    async fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        let mut daemons = Vec::new();
        self.dump(encode::daemons_request, |payload| {
            daemons.push(decode::parse_daemon(payload)?);
            Ok(())
        })
        .await
        .map_err(|failure| observe_error("the IPVS sync daemons", &failure))?;
        daemons.sort_by_key(|daemon| daemon.role);
        Ok(daemons)
    }

    async fn start_sync_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), KernelError> {
        let op = || format!("start {daemon}");
        if let Some(problem) = sync::interface_problem(&daemon.interface) {
            return Err(KernelError::Operation {
                op: op(),
                cause: Cause::Other(problem),
            });
        }
        self.command(|out, family, seq| encode::start_daemon_request(out, family, seq, daemon))
            .await
            .map_err(|failure| KernelError::Operation {
                op: op(),
                cause: describe_daemon_failure(&failure, daemon.role, Some(&daemon.interface)),
            })
    }

    async fn stop_sync_daemon(&mut self, role: SyncRole) -> Result<(), KernelError> {
        self.command(|out, family, seq| encode::stop_daemon_request(out, family, seq, role))
            .await
            .map_err(|failure| KernelError::Operation {
                op: format!("stop the IPVS {role} sync daemon"),
                cause: describe_daemon_failure(&failure, role, None),
            })
    }

    async fn expire_quiescent_templates(&mut self) -> Result<(), KernelError> {
        // The network namespace's own copy: this process's, as the socket's.
        // One write to procfs, which never waits on a disk.
        std::fs::write(EXPIRE_QUIESCENT_TEMPLATE, b"1\n").map_err(|error| KernelError::Operation {
            op: format!("set {EXPIRE_QUIESCENT_TEMPLATE} to 1"),
            cause: Cause::io(&error),
        })
    }
}

const EXPIRE_QUIESCENT_TEMPLATE: &str = "/proc/sys/net/ipv4/vs/expire_quiescent_template";

/// One message of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step<'a> {
    op: usize,
    message: Message<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Not answered: not sent yet, or never (an earlier message of its
    /// operation was refused).
    Pending,
    Done,
    Refused(Refusal),
}

/// The messages of `ops` in order, and the range of them each operation has.
fn plan_steps(ops: &[IpvsOp]) -> (Vec<Step<'_>>, Vec<Range<usize>>) {
    let mut steps = Vec::new();
    let mut ranges = Vec::with_capacity(ops.len());
    for (op, operation) in ops.iter().enumerate() {
        let start = steps.len();
        let mut push = |message| steps.push(Step { op, message });
        match operation {
            IpvsOp::AddService { key, service } => {
                push(Message::NewService(key, &service.settings));
                for (dest, settings) in &service.destinations {
                    push(Message::NewDest(key, dest, settings));
                }
            }
            IpvsOp::DeleteService { key, .. } => push(Message::DelService(key)),
            IpvsOp::EditService { key, to, .. } => push(Message::SetService(key, to)),
            IpvsOp::AddDest {
                service,
                dest,
                settings,
            } => push(Message::NewDest(service, dest, settings)),
            IpvsOp::DeleteDest { service, dest, .. } => push(Message::DelDest(service, dest)),
            IpvsOp::EditDest {
                service, dest, to, ..
            } => push(Message::SetDest(service, dest, to)),
        }
        ranges.push(start..steps.len());
    }
    (steps, ranges)
}

/// The steps of the next write, from `start`: up to `limit` of them, leaving
/// out those of an operation already refused, and ending before an operation
/// that touches the service of an `AddService` with steps in this write (that
/// one's outcome decides what the operation meets). Returns the chosen steps and
/// where the next write starts.
fn next_batch(
    steps: &[Step<'_>],
    ranges: &[Range<usize>],
    refused: &[bool],
    start: usize,
    limit: usize,
) -> (Vec<usize>, usize) {
    let adds_a_service =
        |op: usize| matches!(steps[ranges[op].start].message, Message::NewService(..));
    let mut members: Vec<usize> = Vec::new();
    let mut adding: HashSet<ServiceKey> = HashSet::new();
    let mut next = start;
    while let Some(step) = steps.get(next) {
        if refused[step.op] {
            next += 1;
            continue;
        }
        if members.len() >= limit {
            break;
        }
        let continues = members
            .last()
            .is_some_and(|&last| steps[last].op == step.op);
        if !continues {
            if adding.contains(step.message.service()) {
                break;
            }
            // An `AddService` may have begun in an earlier write.
            if adds_a_service(step.op) {
                adding.insert(*step.message.service());
            }
        }
        members.push(next);
        next += 1;
    }
    (members, next)
}

fn encode_batch(family: u16, first: u32, messages: &[Message<'_>]) -> Result<Vec<u8>, EncodeError> {
    let mut batch = Vec::with_capacity(messages.len() * 160);
    for (i, message) in messages.iter().enumerate() {
        let seq = first.wrapping_add(i as u32);
        message.encode(family, seq, i + 1 == messages.len(), &mut batch)?;
    }
    Ok(batch)
}

/// The answers to a batch were lost: the operations begun up to the batch's
/// end (`after`, a step index) may be done in part, the later ones are not
/// attempted.
fn lost(
    ops: &[IpvsOp],
    ranges: &[Range<usize>],
    after: usize,
    reason: impl Into<Cause>,
    results: &mut Vec<Result<(), KernelError>>,
) {
    let reason = reason.into();
    for op in results.len()..ops.len() {
        let cause = if ranges[op].start < after {
            reason.clone().within(
                "",
                "; it may have been carried out in part: check the IPVS table",
            )
        } else {
            reason.clone().within(
                "not attempted: an earlier operation's answer was lost (",
                ")",
            )
        };
        results.push(Err(KernelError::Operation {
            op: ops[op].to_string(),
            cause,
        }));
    }
}

/// A refusal in words: what the errno means for this message, then the errno.
fn describe_refusal(message: &Message<'_>, refusal: &Refusal) -> Cause {
    let meaning = match (message, refusal.errno) {
        (_, EPERM) => {
            Some("not permitted (lbconsole needs CAP_NET_ADMIN: run it as root)".to_owned())
        }
        (Message::NewService(..), EEXIST) => Some("the service already exists".to_owned()),
        (Message::NewService(_, settings) | Message::SetService(_, settings), ENOENT) => {
            Some(format!(
                "unknown scheduler `{}` (no ip_vs_{} module)",
                settings.scheduler, settings.scheduler
            ))
        }
        (_, ESRCH) => Some("no such service".to_owned()),
        (Message::NewDest(..), EEXIST) => Some("the real server already exists".to_owned()),
        (Message::SetDest(..) | Message::DelDest(..), ENOENT) => {
            Some("no such real server".to_owned())
        }
        (Message::NewDest(..) | Message::SetDest(..), ERANGE) => {
            Some("weight out of range".to_owned())
        }
        (_, EINVAL) => Some("invalid request".to_owned()),
        _ => None,
    };
    let cause = Cause::from(refusal.clone());
    match meaning {
        Some(meaning) => cause.within(format!("{meaning}: "), ""),
        None => cause,
    }
}

/// A sync daemon's start (with its `interface`) or stop refused, in words:
/// the refusals `start_sync_thread` and `stop_sync_thread` have.
fn describe_daemon_failure(failure: &Failure, role: SyncRole, interface: Option<&str>) -> Cause {
    let Failure::Refused(refusal) = failure else {
        return describe_failure(failure);
    };
    let meaning = match (interface, refusal.errno) {
        (Some(_), EEXIST) => format!("a {role} sync daemon is already running"),
        (None, ESRCH) => format!("no {role} sync daemon is running"),
        (Some(interface), ENODEV) => format!("no interface named {interface}"),
        (Some(_), EINVAL) => "invalid request (the kernel refuses connection sync while a \
                              service has a real server of the other address family)"
            .to_owned(),
        _ => return describe_failure(failure),
    };
    Cause::from(refusal.clone()).within(format!("{meaning}: "), "")
}

fn describe_failure(failure: &Failure) -> Cause {
    match failure {
        Failure::Refused(refusal) if refusal.errno == EPERM => Cause::from(refusal.clone()).within(
            "not permitted (lbconsole needs CAP_NET_ADMIN: run it as root): ",
            "",
        ),
        other => other.cause(),
    }
}

fn observe_error(what: &'static str, failure: &Failure) -> KernelError {
    KernelError::Observe {
        what,
        cause: describe_failure(failure),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::plan::ipvs::{DestKey, Forward, Netmask, ServiceSettings, TCP};

    fn vip(last: u8) -> ServiceKey {
        ServiceKey::Vip {
            protocol: TCP,
            address: Ipv4Addr::new(198, 51, 100, last).into(),
            port: 80,
        }
    }

    fn real(last: u8) -> DestKey {
        DestKey {
            address: Ipv4Addr::new(10, 0, 0, last).into(),
            port: 80,
        }
    }

    fn masq() -> DestSettings {
        DestSettings {
            forward: Forward::Masquerade,
            weight: 1,
        }
    }

    fn rr() -> ServiceSettings {
        ServiceSettings {
            scheduler: "rr".to_owned(),
            flags: 0,
            timeout: 0,
            netmask: Netmask::Ipv4(Ipv4Addr::BROADCAST),
            fwmark_protocol: 0,
        }
    }

    fn add_service(key: ServiceKey, dests: &[u8]) -> IpvsOp {
        IpvsOp::AddService {
            key,
            service: Service {
                settings: rr(),
                destinations: dests.iter().map(|&d| (real(d), masq())).collect(),
            },
        }
    }

    fn add_dest(service: ServiceKey, dest: u8) -> IpvsOp {
        IpvsOp::AddDest {
            service,
            dest: real(dest),
            settings: masq(),
        }
    }

    #[test]
    fn an_added_service_is_one_message_and_one_per_destination() {
        let ops = [
            add_service(vip(1), &[2, 1]),
            IpvsOp::DeleteDest {
                service: vip(1),
                dest: real(1),
                settings: masq(),
            },
            IpvsOp::EditService {
                key: vip(2),
                from: rr(),
                to: rr(),
            },
        ];
        let (steps, ranges) = plan_steps(&ops);
        let settings = rr();
        let messages: Vec<_> = steps.iter().map(|s| (s.op, s.message)).collect();
        assert_eq!(
            messages,
            [
                (0, Message::NewService(&vip(1), &settings)),
                (0, Message::NewDest(&vip(1), &real(1), &masq())),
                (0, Message::NewDest(&vip(1), &real(2), &masq())),
                (1, Message::DelDest(&vip(1), &real(1))),
                (2, Message::SetService(&vip(2), &settings)),
            ]
        );
        assert_eq!(ranges, [0..3, 3..4, 4..5]);
    }

    #[test]
    fn a_batch_holds_up_to_the_limit_and_an_operation_may_span_batches() {
        let ops = [add_service(vip(1), &[1, 2, 3, 4]), add_dest(vip(2), 1)];
        let (steps, ranges) = plan_steps(&ops);
        let refused = [false, false];
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 0, 3),
            (vec![0, 1, 2], 3)
        );
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 3, 3),
            (vec![3, 4, 5], 6)
        );
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 0, 256),
            (vec![0, 1, 2, 3, 4, 5], 6)
        );
    }

    #[test]
    fn an_operation_on_a_service_added_in_the_same_batch_starts_the_next_one() {
        let ops = [
            add_service(vip(1), &[1]),
            add_dest(vip(2), 1),
            add_dest(vip(1), 2),
            add_dest(vip(1), 3),
        ];
        let (steps, ranges) = plan_steps(&ops);
        let refused = [false; 4];
        // The service's own destinations go with it; another service's too.
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 0, 256),
            (vec![0, 1, 2], 3)
        );
        // Once the addition is concluded, the rest may share a batch.
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 3, 256),
            (vec![3, 4], 5)
        );
        // Two additions of the same service are not in one batch either.
        let ops = [add_service(vip(1), &[]), add_service(vip(1), &[])];
        let (steps, ranges) = plan_steps(&ops);
        assert_eq!(
            next_batch(&steps, &ranges, &[false, false], 0, 256),
            (vec![0], 1)
        );
    }

    #[test]
    fn an_addition_that_spans_batches_keeps_its_service_to_itself_in_each() {
        let ops = [
            add_service(vip(1), &[1, 2, 3, 4]),
            add_dest(vip(2), 1),
            add_dest(vip(1), 5),
        ];
        let (steps, ranges) = plan_steps(&ops);
        let refused = [false; 3];
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 0, 3),
            (vec![0, 1, 2], 3)
        );
        // The rest of the addition, another service's destination, and not
        // the destination for the service being added.
        assert_eq!(
            next_batch(&steps, &ranges, &refused, 3, 256),
            (vec![3, 4, 5], 6)
        );
    }

    #[test]
    fn the_rest_of_a_refused_operation_is_not_sent() {
        let ops = [add_service(vip(1), &[1, 2, 3, 4]), add_dest(vip(2), 1)];
        let (steps, ranges) = plan_steps(&ops);
        // The first batch (limit 2) had the service refused: its remaining
        // destinations are passed over, the next operation goes.
        assert_eq!(
            next_batch(&steps, &ranges, &[true, false], 2, 2),
            (vec![5], 6)
        );
    }

    #[test]
    fn refusals_are_told_in_the_words_of_the_message_refused() {
        let settings = ServiceSettings {
            scheduler: "nosuch".to_owned(),
            ..rr()
        };
        let refusal = |errno| Refusal {
            errno,
            detail: None,
        };
        let cases = [
            (
                Message::NewService(&vip(1), &settings),
                ENOENT,
                "unknown scheduler `nosuch` (no ip_vs_nosuch module): No such file or \
                 directory (os error 2)",
            ),
            (
                Message::NewService(&vip(1), &settings),
                EEXIST,
                "the service already exists: File exists (os error 17)",
            ),
            (
                Message::NewDest(&vip(1), &real(1), &masq()),
                ESRCH,
                "no such service: No such process (os error 3)",
            ),
            (
                Message::NewDest(&vip(1), &real(1), &masq()),
                EEXIST,
                "the real server already exists: File exists (os error 17)",
            ),
            (
                Message::DelDest(&vip(1), &real(1)),
                ENOENT,
                "no such real server: No such file or directory (os error 2)",
            ),
            (
                Message::DelService(&vip(1)),
                EPERM,
                "not permitted (lbconsole needs CAP_NET_ADMIN: run it as root): Operation \
                 not permitted (os error 1)",
            ),
            (
                Message::DelService(&vip(1)),
                12,
                "Cannot allocate memory (os error 12)",
            ),
        ];
        for (message, errno, text) in cases {
            assert_eq!(
                describe_refusal(&message, &refusal(errno)).to_string(),
                text
            );
        }
    }

    #[test]
    fn when_answers_are_lost_the_operations_begun_may_be_done_and_the_rest_were_not_tried() {
        let ops = [
            add_dest(vip(1), 1),
            add_dest(vip(1), 2),
            add_dest(vip(1), 3),
        ];
        let (_, ranges) = plan_steps(&ops);
        let mut results = vec![Ok(())];
        lost(
            &ops,
            &ranges,
            2,
            "cannot read the kernel's answer: boom",
            &mut results,
        );
        let reasons: Vec<String> = results
            .iter()
            .map(|r| match r {
                Ok(()) => "ok".to_owned(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            reasons,
            [
                "ok".to_owned(),
                format!(
                    "{}: cannot read the kernel's answer: boom; it may have been carried out \
                     in part: check the IPVS table",
                    ops[1]
                ),
                format!(
                    "{}: not attempted: an earlier operation's answer was lost (cannot read \
                     the kernel's answer: boom)",
                    ops[2]
                ),
            ]
        );
    }

    #[test]
    fn sync_daemon_refusals_are_told_in_words() {
        let refused = |errno| {
            Failure::Refused(Refusal {
                errno,
                detail: None,
            })
        };
        let cases = [
            (
                refused(EEXIST),
                Some("eth1"),
                "a master sync daemon is already running: File exists (os error 17)",
            ),
            (
                refused(ENODEV),
                Some("eth1"),
                "no interface named eth1: No such device (os error 19)",
            ),
            (
                refused(EINVAL),
                Some("eth1"),
                "invalid request (the kernel refuses connection sync while a service has a real \
                 server of the other address family): Invalid argument (os error 22)",
            ),
            (
                refused(ESRCH),
                None,
                "no master sync daemon is running: No such process (os error 3)",
            ),
            (
                refused(EPERM),
                None,
                "not permitted (lbconsole needs CAP_NET_ADMIN: run it as root): Operation not \
                 permitted (os error 1)",
            ),
        ];
        for (failure, interface, text) in cases {
            assert_eq!(
                describe_daemon_failure(&failure, SyncRole::Master, interface).to_string(),
                text
            );
        }
    }

    #[test]
    fn the_version_reads_as_ipvsadm_shows_it() {
        let info = IpvsInfo {
            version: 0x01_02_01,
            connection_table_size: 4096,
        };
        assert_eq!(info.version_text(), "1.2.1");
    }
}
