//! PURE: netlink on the wire, the one copy: message framing (`nlmsghdr`,
//! `NLMSG_ALIGN`), the attribute walk (`nlattr`, nested or not), the kernel's
//! acknowledgements, refusals and dump ends (`NLMSG_ERROR`, `NLMSG_DONE`) and
//! the extended acknowledgement's text (`NLMSGERR_ATTR_MSG`).
//!
//! The IPVS family's messages are framed and walked here; the rtnetlink side
//! (`netlink.rs`) gets its messages parsed by netlink-packet-route, but reads
//! the extended acknowledgement of a refusal here.
//!
//! Reading never trusts a length: every message and attribute is checked to fit
//! before it is looked at, so that no kernel data can make the parser index out
//! of bounds (`kernel::fuzz` feeds it arbitrary and damaged frames).

use std::fmt;

/// `NLMSG_ERROR` and `NLMSG_DONE`; types from `NLMSG_MIN_TYPE` on carry data.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_MIN_TYPE: u16 = 0x10;
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_CAPPED`: an error that echoes only the request's header.
pub const NLM_F_CAPPED: u16 = 0x100;
/// `NLM_F_ACK_TLVS`: an error followed by extended acknowledgement attributes.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// `NLMSGERR_ATTR_MSG`: the extended acknowledgement's text.
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSG_HDRLEN: usize = 16;
/// `GENL_HDRLEN`: command, version, reserved.
pub const GENL_HDRLEN: usize = 4;
/// The type bits of `nla_type`; the top two are flags (nested, byte order).
pub const NLA_TYPE_MASK: u16 = 0x3fff;

/// A request that cannot be put into bytes: an attribute too long for
/// netlink's 16-bit lengths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode the request: {}", self.0)
    }
}

impl EncodeError {
    pub fn new(what: impl fmt::Display) -> Self {
        Self(what.to_string())
    }
}

/// What the kernel sent that does not read as it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn malformed(what: impl fmt::Display) -> DecodeError {
    DecodeError(format!("malformed answer from the kernel: {what}"))
}

/// The kernel's no to one request: an errno, and the extended acknowledgement's
/// text when it gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Positive: `EEXIST`, `ESRCH`, …
    pub errno: i32,
    pub detail: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.errno))?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

/// One netlink message from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub seq: u32,
    pub body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// A data message: its payload (for generic netlink, the generic header
    /// and attributes).
    Data(&'a [u8]),
    /// `NLMSG_ERROR` with errno 0.
    Ack,
    /// `NLMSG_ERROR` with an errno.
    Refused(Refusal),
    /// `NLMSG_DONE`, the end of a dump; an errno when the dump failed.
    Done(Option<Refusal>),
    /// `NLMSG_NOOP`, `NLMSG_OVERRUN`: nothing to act on.
    Other,
}

/// The netlink messages of one datagram, in order. A message whose length does
/// not fit ends the iteration with an error.
pub fn frames(datagram: &[u8]) -> Frames<'_> {
    Frames { rest: datagram }
}

pub struct Frames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let Some(header) = rest.get(..NLMSG_HDRLEN) else {
            return Some(Err(malformed(format!(
                "{} trailing bytes, too few for a netlink header",
                rest.len()
            ))));
        };
        let length = ne_u32(&header[0..4]) as usize;
        if length < NLMSG_HDRLEN || length > rest.len() {
            return Some(Err(malformed(format!(
                "a netlink message of {length} bytes in {} bytes",
                rest.len()
            ))));
        }
        let kind = ne_u16(&header[4..6]);
        let flags = ne_u16(&header[6..8]);
        let seq = ne_u32(&header[8..12]);
        let body = &rest[NLMSG_HDRLEN..length];
        self.rest = rest.get(align(length)..).unwrap_or_default();
        Some(decode_body(kind, flags, body).map(|body| Frame { seq, body }))
    }
}

fn decode_body(kind: u16, flags: u16, body: &[u8]) -> Result<Body<'_>, DecodeError> {
    match kind {
        NLMSG_ERROR => {
            let errno = error_code(body, "NLMSG_ERROR")?;
            if errno == 0 {
                return Ok(Body::Ack);
            }
            Ok(Body::Refused(Refusal {
                errno: errno.saturating_neg(),
                detail: extack_of_error(flags, body),
            }))
        }
        NLMSG_DONE => {
            // A dump's end carries the dump's errno (generic netlink always
            // sends it); an empty one is a plain end.
            let errno = if body.is_empty() {
                0
            } else {
                error_code(body, "NLMSG_DONE")?
            };
            Ok(Body::Done((errno != 0).then(|| Refusal {
                errno: errno.saturating_neg(),
                detail: None,
            })))
        }
        kind if kind >= NLMSG_MIN_TYPE => Ok(Body::Data(body)),
        _ => Ok(Body::Other),
    }
}

fn error_code(body: &[u8], what: &str) -> Result<i32, DecodeError> {
    body.get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed(format!("{what} of {} bytes", body.len())))
}

/// `NLMSGERR_ATTR_MSG` of an `NLMSG_ERROR` whose header has `flags` and whose
/// body (errno first) is `body`.
fn extack_of_error(flags: u16, body: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    extack_message(body.get(4..)?, flags & NLM_F_CAPPED != 0)
}

/// The text of an extended acknowledgement. `echoed` is what follows the errno
/// in an `NLMSG_ERROR`: the request, whole (its header says how long) or, when
/// `capped` (`NLM_F_CAPPED`), its header only; then attributes, of which
/// `NLMSGERR_ATTR_MSG` is a NUL-terminated string. `None` when there is no
/// text, or the bytes do not read as an acknowledgement.
pub fn extack_message(echoed: &[u8], capped: bool) -> Option<String> {
    let request_len = if capped {
        NLMSG_HDRLEN
    } else {
        usize::try_from(ne_u32(echoed.get(0..4)?)).ok()?
    };
    let tlvs = echoed.get(align(request_len)..)?;
    let text = c_string(table::<2>(tlvs).ok()?[usize::from(NLMSGERR_ATTR_MSG)]?);
    let text = text.trim().trim_end_matches('.');
    (!text.is_empty()).then(|| text.to_owned())
}

/// Calls `each` with every attribute of `bytes`: its type (flags cleared) and
/// value. A plain loop: this runs for every attribute of a big table's dump,
/// in unoptimised builds too.
pub fn walk<'a>(bytes: &'a [u8], mut each: impl FnMut(usize, &'a [u8])) -> Result<(), DecodeError> {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 4 {
            return Err(malformed(format!(
                "{} trailing bytes, too few for an attribute",
                rest.len()
            )));
        }
        let length = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        if length < 4 || length > rest.len() {
            return Err(malformed(format!(
                "an attribute of {length} bytes in {} bytes",
                rest.len()
            )));
        }
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        each(usize::from(kind), &rest[4..length]);
        at += align(length);
    }
    Ok(())
}

/// The attributes of `bytes` by type, up to `N - 1`; later types are ignored,
/// as the kernel ignores those it does not know, and the last of a type wins.
pub fn table<const N: usize>(bytes: &[u8]) -> Result<[Option<&[u8]>; N], DecodeError> {
    let mut table = [None; N];
    walk(bytes, |kind, value| {
        if let Some(slot) = table.get_mut(kind) {
            *slot = Some(value);
        }
    })?;
    Ok(table)
}

/// The attributes of a generic netlink message's payload, past its header.
pub fn genl_table<const N: usize>(payload: &[u8]) -> Result<[Option<&[u8]>; N], DecodeError> {
    let attrs = payload.get(GENL_HDRLEN..).ok_or_else(|| {
        malformed(format!(
            "a generic netlink message of {} bytes",
            payload.len()
        ))
    })?;
    table(attrs)
}

/// `NLMSG_ALIGN` and `NLA_ALIGN`: 4 bytes. Saturates rather than wraps, so a
/// length near `usize::MAX` fails the bounds check after it.
pub fn align(length: usize) -> usize {
    length.saturating_add(3) & !3
}

fn ne_u16(bytes: &[u8]) -> u16 {
    u16::from_ne_bytes([bytes[0], bytes[1]])
}

fn ne_u32(bytes: &[u8]) -> u32 {
    u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// The text of a NUL-terminated string attribute (up to the first NUL).
pub fn c_string(bytes: &[u8]) -> String {
    let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

/// One generic netlink request being appended to a buffer; lengths are filled
/// in as the message and its nested attributes end.
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> Writer<'a> {
    /// Starts a request (`NLM_F_REQUEST` and `flags`) to generic netlink
    /// family `family`: the netlink header, then the generic one.
    pub fn genl(
        out: &'a mut Vec<u8>,
        family: u16,
        flags: u16,
        seq: u32,
        command: u8,
        version: u8,
    ) -> Self {
        let start = out.len();
        out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, at the end
        out.extend_from_slice(&family.to_ne_bytes());
        out.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
        out.extend_from_slice(&[command, version, 0, 0]);
        Self { out, start }
    }

    pub fn put(&mut self, kind: u16, value: &[u8]) -> Result<(), EncodeError> {
        let length = attr_length(4 + value.len())?;
        let at = self.out.len();
        self.out.resize(at + align(4 + value.len()), 0);
        let attr = &mut self.out[at..];
        attr[0..2].copy_from_slice(&length.to_ne_bytes());
        attr[2..4].copy_from_slice(&kind.to_ne_bytes());
        attr[4..4 + value.len()].copy_from_slice(value);
        Ok(())
    }

    /// Starts a nested attribute; [`Writer::end_nest`] gives its length.
    pub fn begin_nest(&mut self, kind: u16) -> usize {
        let start = self.out.len();
        self.out.extend_from_slice(&0u16.to_ne_bytes());
        self.out.extend_from_slice(&kind.to_ne_bytes());
        start
    }

    pub fn end_nest(&mut self, start: usize) -> Result<(), EncodeError> {
        let length = attr_length(self.out.len() - start)?;
        self.out[start..start + 2].copy_from_slice(&length.to_ne_bytes());
        Ok(())
    }

    pub fn finish(self) -> Result<(), EncodeError> {
        let length = u32::try_from(self.out.len() - self.start)
            .map_err(|_| EncodeError("a message longer than 4 GiB".to_owned()))?;
        self.out[self.start..self.start + 4].copy_from_slice(&length.to_ne_bytes());
        Ok(())
    }
}

fn attr_length(length: usize) -> Result<u16, EncodeError> {
    u16::try_from(length)
        .map_err(|_| EncodeError(format!("an attribute of {length} bytes (at most 65535)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::samples::{FAMILY, neli_attr, neli_bytes, netlink};

    #[test]
    fn acks_refusals_and_dump_ends_are_told_apart() {
        let request = netlink(FAMILY, 1, 5, &[1, 1, 0, 0]);
        // A refusal with NETLINK_CAP_ACK (header only) and an extended ack text.
        let mut refused = (-17i32).to_ne_bytes().to_vec();
        refused.extend_from_slice(&request[..NLMSG_HDRLEN]);
        refused.extend(neli_bytes(neli_attr(
            NLMSGERR_ATTR_MSG,
            b"Service exists.\0",
        )));
        // The same without the cap: the whole request echoed.
        let mut uncapped = (-17i32).to_ne_bytes().to_vec();
        uncapped.extend_from_slice(&request);
        uncapped.extend(neli_bytes(neli_attr(
            NLMSGERR_ATTR_MSG,
            b"Service exists\0",
        )));
        let datagram = [
            netlink(NLMSG_ERROR, 0x100, 4, &[0; 20]),
            netlink(NLMSG_ERROR, 0x100 | 0x200, 5, &refused),
            netlink(NLMSG_ERROR, 0x200, 6, &uncapped),
            netlink(NLMSG_ERROR, 0, 7, &(-3i32).to_ne_bytes()),
            netlink(NLMSG_DONE, 2, 8, &0i32.to_ne_bytes()),
            netlink(NLMSG_DONE, 2, 9, &(-16i32).to_ne_bytes()),
            netlink(1, 0, 10, &[]),
            netlink(FAMILY, 2, 11, &[4, 1, 0, 0]),
        ]
        .concat();
        let exists = Refusal {
            errno: 17,
            detail: Some("Service exists".to_owned()),
        };
        let frames: Vec<_> = frames(&datagram).map(Result::unwrap).collect();
        let bodies: Vec<_> = frames.iter().map(|f| (f.seq, f.body.clone())).collect();
        assert_eq!(
            bodies,
            [
                (4, Body::Ack),
                (5, Body::Refused(exists.clone())),
                (6, Body::Refused(exists)),
                (
                    7,
                    Body::Refused(Refusal {
                        errno: 3,
                        detail: None
                    })
                ),
                (8, Body::Done(None)),
                (
                    9,
                    Body::Done(Some(Refusal {
                        errno: 16,
                        detail: None
                    }))
                ),
                (10, Body::Other),
                (11, Body::Data(&[4, 1, 0, 0][..])),
            ]
        );
        assert_eq!(
            Refusal {
                errno: 17,
                detail: Some("Service exists".to_owned())
            }
            .to_string(),
            "File exists (os error 17): Service exists"
        );
    }

    #[test]
    fn a_message_longer_than_the_datagram_ends_the_frames_with_an_error() {
        let mut datagram = netlink(NLMSG_ERROR, 0, 1, &[0; 20]);
        let mut truncated = netlink(FAMILY, 2, 2, &[4, 1, 0, 0, 8, 0, 1, 0]);
        truncated.truncate(20);
        datagram.extend(truncated);
        let mut frames = frames(&datagram);
        assert!(matches!(frames.next(), Some(Ok(Frame { seq: 1, .. }))));
        assert_eq!(
            frames.next(),
            Some(Err(malformed("a netlink message of 24 bytes in 20 bytes")))
        );
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn extended_ack_text() {
        let attribute = |kind: u16, value: &[u8]| {
            let len = u16::try_from(4 + value.len()).unwrap();
            let mut bytes = [len.to_ne_bytes(), kind.to_ne_bytes()].concat();
            bytes.extend_from_slice(value);
            while bytes.len() % 4 != 0 {
                bytes.push(0);
            }
            bytes
        };
        // The echoed request: a 16-byte header and 6 bytes of payload, padded.
        let mut echoed = 22u32.to_ne_bytes().to_vec();
        echoed.resize(24, 7);
        assert_eq!(extack_message(&echoed, false), None);
        echoed.extend(attribute(2, &40u32.to_ne_bytes()));
        echoed.extend(attribute(1, b"Nexthop has invalid gateway.\0"));
        assert_eq!(
            extack_message(&echoed, false).as_deref(),
            Some("Nexthop has invalid gateway")
        );
        // Truncated or nonsensical input is no message, not a panic.
        for cut in 0..echoed.len() {
            let _ = extack_message(&echoed[..cut], false);
        }
        assert_eq!(extack_message(&u32::MAX.to_ne_bytes(), false), None);
        assert_eq!(extack_message(&[24, 0, 0, 0, 0, 0], false), None);
    }
}
