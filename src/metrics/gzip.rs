//! gzip for a scrape, as Prometheus asks for it (`Accept-Encoding: gzip`).
//!
//! The daemon's exposition (hundreds of kilobytes for a few hundred servers)
//! is deflated once, when a scrape first asks for it, and each scrape appends
//! the heartbeat rendered then as the stream's last block, stored as it is.
//! The answer is one gzip member, which every client reads (curl reads no
//! second member), and a scrape costs a checksum of the heartbeat's few
//! hundred bytes rather than deflating the whole exposition again.

use std::io::Write;

use crc32fast::Hasher;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// gzip's header: deflate, no flags, no time, unknown system (RFC 1952).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The most a stored deflate block holds (RFC 1951, 3.2.4).
const STORED_MAX: usize = u16::MAX as usize;

/// A text deflated up to a sync flush: byte-aligned and not final, so that
/// more blocks may follow.
#[derive(Debug)]
pub struct Deflated {
    blocks: Vec<u8>,
    checksum: Hasher,
    len: usize,
}

impl Deflated {
    pub fn of(text: &str) -> Deflated {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        // Writing to a Vec cannot fail; `flush` is deflate's sync flush.
        let _ = encoder.write_all(text.as_bytes());
        let _ = encoder.flush();
        let mut checksum = Hasher::new();
        checksum.update(text.as_bytes());
        Deflated {
            blocks: std::mem::take(encoder.get_mut()),
            checksum,
            len: text.len(),
        }
    }

    /// The start of the gzip member: its header and the text's blocks.
    pub fn prefix(&self) -> [&[u8]; 2] {
        [&HEADER, &self.blocks]
    }

    /// The rest of the member after [`Deflated::prefix`]: `tail` as the last
    /// stored blocks, and the trailer, the checksum and length of the text and
    /// `tail` together.
    pub fn suffix(&self, tail: &str) -> Vec<u8> {
        let tail = tail.as_bytes();
        let mut out = Vec::with_capacity(tail.len() + 5 * (tail.len() / STORED_MAX + 1) + 8);
        let mut chunks = tail.chunks(STORED_MAX).peekable();
        if chunks.peek().is_none() {
            out.extend_from_slice(&stored_header(true, 0));
        }
        while let Some(chunk) = chunks.next() {
            out.extend_from_slice(&stored_header(chunks.peek().is_none(), chunk.len()));
            out.extend_from_slice(chunk);
        }
        let mut checksum = self.checksum.clone();
        checksum.update(tail);
        out.extend_from_slice(&checksum.finalize().to_le_bytes());
        // ISIZE is the length modulo 2^32.
        #[allow(clippy::cast_possible_truncation)]
        let size = (self.len + tail.len()) as u32;
        out.extend_from_slice(&size.to_le_bytes());
        out
    }
}

/// A stored block's header: BFINAL, BTYPE 00 and the padding to the byte
/// (the stream is byte-aligned after a sync flush and after a stored block),
/// then LEN and its complement.
fn stored_header(last: bool, len: usize) -> [u8; 5] {
    let len = u16::try_from(len).unwrap_or(u16::MAX);
    let [low, high] = len.to_le_bytes();
    let [not_low, not_high] = (!len).to_le_bytes();
    [u8::from(last), low, high, not_low, not_high]
}

/// Whether a request head's `Accept-Encoding` takes gzip (a `q=0` refuses it).
pub fn accepted(head: &str) -> bool {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("accept-encoding"))
        .flat_map(|(_, codings)| codings.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    fn member(text: &str, tail: &str) -> Vec<u8> {
        let deflated = Deflated::of(text);
        let mut bytes = deflated.prefix().concat();
        bytes.extend(deflated.suffix(tail));
        bytes
    }

    /// What a single-member reader (as curl's) makes of it.
    fn inflate(bytes: &[u8]) -> String {
        let mut text = String::new();
        GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .expect("a valid gzip member");
        text
    }

    #[test]
    fn a_scrape_is_one_member_of_the_exposition_and_the_heartbeat() {
        let text = "lbconsole_server_up{director=\"web\",server=\"web1\"} 1\n".repeat(5_000);
        let tail = "lbconsole_checks_total 42\n";
        let bytes = member(&text, tail);
        assert_eq!(inflate(&bytes), format!("{text}{tail}"));
        assert!(bytes.len() < text.len() / 20, "{} bytes", bytes.len());
    }

    #[test]
    fn empty_parts_and_a_tail_over_one_stored_block() {
        assert_eq!(inflate(&member("", "")), "");
        assert_eq!(inflate(&member("x\n", "")), "x\n");
        let long = "y".repeat(STORED_MAX * 2 + 3);
        assert_eq!(inflate(&member("head\n", &long)), format!("head\n{long}"));
    }

    #[test]
    fn gzip_is_taken_as_clients_ask_for_it() {
        let head = |value: &str| format!("GET /metrics HTTP/1.1\r\nAccept-Encoding: {value}\r\n");
        assert!(accepted(&head("gzip")));
        assert!(accepted(&head("deflate, GZIP;q=0.5")));
        assert!(accepted(
            "GET /metrics HTTP/1.1\r\naccept-encoding:gzip\r\n"
        ));
        assert!(accepted(&head("*")));
        assert!(!accepted(&head("gzip;q=0")));
        assert!(!accepted(&head("identity")));
        assert!(!accepted("GET /metrics HTTP/1.1\r\nHost: lab\r\n"));
    }
}
