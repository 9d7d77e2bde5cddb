//! Splits a file into lines of whitespace-separated tokens, each with its location.
//!
//! Comments (`#` to the end of the line), CRLF line ends and tabs are accepted.
//! Bytes that are not UTF-8 text, and control characters, are reported and their
//! line skipped, so a binary file yields a handful of clear errors and no panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::config::diagnostic::{ConfigFile, Diagnostic, Problem, Sink, did_you_mean};
use crate::config::model::types::{Family, IpNet, Loc, Port, mask_to_prefix};

/// After this many unreadable lines the rest of the file is not worth reporting.
const MAX_ENCODING_ERRORS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub loc: Loc,
}

#[derive(Debug)]
pub struct Line<'l, 'a> {
    pub tokens: &'l [Token<'a>],
    /// The line could not be read (and was reported); it may have been a section header.
    pub unreadable: bool,
}

/// The raw lines of a file with their 0-based index.
type NumberedLines<'a> = std::iter::Enumerate<RawLines<'a>>;

/// A file's bytes split at each `\n`, as `split` would, with the search inlined
/// rather than a call per byte.
struct RawLines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for RawLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.rest = Some(&rest[end + 1..]);
                Some(&rest[..end])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Hands out a file one line of tokens at a time, into one reused buffer: the
/// tokens of a large file would take several times its size if held all at once.
pub struct Lexer<'a> {
    lines: NumberedLines<'a>,
    tokens: Vec<Token<'a>>,
    /// The unreadable lines; they come before the parser's own diagnostics.
    sink: Sink,
}

impl<'a> Lexer<'a> {
    pub fn new(source: &'a [u8], file: ConfigFile) -> Self {
        Self {
            lines: RawLines { rest: Some(source) }.enumerate(),
            tokens: Vec::new(),
            sink: Sink::new(file),
        }
    }

    /// The next line that holds tokens or could not be read; `None` at the end
    /// of the file, or once it is plainly not text.
    pub fn next_line(&mut self) -> Option<Line<'_, 'a>> {
        if self.sink.diagnostics.len() > MAX_ENCODING_ERRORS {
            return None;
        }
        for (index, raw) in self.lines.by_ref() {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            match readable_code(raw) {
                Ok(code) => {
                    tokenize(code, number, &mut self.tokens);
                    if !self.tokens.is_empty() {
                        return Some(Line {
                            tokens: &self.tokens,
                            unreadable: false,
                        });
                    }
                }
                Err((col, message)) => {
                    self.sink.error(Loc::new(number, col), message);
                    if self.sink.diagnostics.len() == MAX_ENCODING_ERRORS {
                        self.sink.error(
                            Loc::new(number, 1),
                            "too many unreadable lines; is this a text file?",
                        );
                        return None;
                    }
                    self.tokens.clear();
                    return Some(Line {
                        tokens: &self.tokens,
                        unreadable: true,
                    });
                }
            }
        }
        None
    }

    /// What was unreadable, followed by the parser's `diagnostics`.
    pub fn diagnostics_then(self, diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
        let mut all = self.sink.diagnostics;
        all.extend(diagnostics);
        all
    }
}

/// The line without its comment, or the column and description of what makes it unreadable.
fn readable_code(raw: &[u8]) -> Result<&str, (u32, String)> {
    let text = std::str::from_utf8(raw).map_err(|e| {
        let valid = std::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or("");
        (
            column_after(valid),
            format!(
                "invalid UTF-8 (byte 0x{:02x}); configuration files are UTF-8 text",
                raw[e.valid_up_to()]
            ),
        )
    })?;
    let code = text.split_once('#').map_or(text, |(code, _)| code);
    // Plain ASCII, nearly every line, is checked a byte at a time without decoding.
    let control = if code.is_ascii() {
        code.bytes()
            .position(|b| b.is_ascii_control() && b != b'\t')
            .map(|offset| (offset, char::from(code.as_bytes()[offset])))
    } else {
        code.char_indices()
            .find(|&(_, c)| c.is_control() && c != '\t')
    };
    match control {
        Some((offset, c)) => Err((
            column_after(&code[..offset]),
            format!("unexpected control character U+{:04X}", u32::from(c)),
        )),
        None => Ok(code),
    }
}

fn column_after(prefix: &str) -> u32 {
    u32::try_from(prefix.chars().count() + 1).unwrap_or(u32::MAX)
}

/// Replaces `tokens` with those of one line.
fn tokenize<'a>(code: &'a str, line: u32, tokens: &mut Vec<Token<'a>>) {
    if code.is_ascii() {
        // A byte is a character: no decoding, and the column is the offset.
        let chars = code.bytes().map(char::from).enumerate();
        split_words(code, line, chars, tokens);
    } else {
        split_words(code, line, code.char_indices(), tokens);
    }
}

/// Replaces `tokens` with the words of `code`, whose characters `chars` gives
/// with their byte offsets.
fn split_words<'a>(
    code: &'a str,
    line: u32,
    chars: impl Iterator<Item = (usize, char)>,
    tokens: &mut Vec<Token<'a>>,
) {
    tokens.clear();
    let mut start: Option<(usize, u32)> = None;
    let mut col = 0u32;
    for (offset, c) in chars {
        col += 1;
        if c.is_whitespace() {
            if let Some((begin, begin_col)) = start.take() {
                tokens.push(Token {
                    text: &code[begin..offset],
                    loc: Loc::new(line, begin_col),
                });
            }
        } else if start.is_none() {
            start = Some((offset, col));
        }
    }
    if let Some((begin, begin_col)) = start {
        tokens.push(Token {
            text: &code[begin..],
            loc: Loc::new(line, begin_col),
        });
    }
}

/// Walks the tokens of one statement.
pub struct Cursor<'l, 'a> {
    tokens: &'l [Token<'a>],
    next: usize,
}

impl<'l, 'a> Cursor<'l, 'a> {
    pub fn new(tokens: &'l [Token<'a>]) -> Self {
        Self { tokens, next: 0 }
    }

    pub fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    pub fn next_token(&mut self) -> Option<Token<'a>> {
        let token = self.peek();
        self.next += usize::from(token.is_some());
        token
    }

    /// Where a missing value would have been: just past the last token read.
    pub fn end_loc(&self) -> Loc {
        match self.next.checked_sub(1).and_then(|i| self.tokens.get(i)) {
            Some(last) => Loc::new(
                last.loc.line,
                last.loc.col + u32::try_from(last.text.chars().count()).unwrap_or(0) + 1,
            ),
            None => self.tokens.first().map_or(Loc::default(), |t| t.loc),
        }
    }

    /// The next token, or an error saying what `after` needs.
    pub fn value(&mut self, after: &str, what: &str) -> Result<Token<'a>, Problem> {
        // At the end nothing was read, so `end_loc` still points past the last token.
        self.next_token()
            .ok_or_else(|| Problem::new(self.end_loc(), format!("`{after}` needs {what}")))
    }

    pub fn eat(&mut self, word: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.text == word);
        self.next += usize::from(found);
        found
    }

    /// Fails on anything left over after a complete statement.
    pub fn finish(&mut self, statement: &str) -> Result<(), Problem> {
        match self.peek() {
            None => Ok(()),
            Some(extra) => Err(Problem::new(
                extra.loc,
                format!("unexpected `{}` after `{statement}`", extra.text),
            )),
        }
    }
}

/// Choice lists up to this long are spelled out when no known word is close.
const LISTED_CHOICES: usize = 8;

/// An unknown word, with the closest known one (or the short list of them) as a hint.
pub fn unknown(token: Token<'_>, what: &str, known: &[&str]) -> Problem {
    let hint = did_you_mean(token.text, known.iter().copied()).or_else(|| {
        (known.len() <= LISTED_CHOICES).then(|| format!("expected one of: {}", known.join(", ")))
    });
    Problem::new(token.loc, format!("unknown {what} `{}`", token.text)).with_hint(hint)
}

pub fn number<T: FromStr>(token: Token<'_>, what: &str) -> Result<T, Problem> {
    token
        .text
        .parse()
        .map_err(|_| Problem::new(token.loc, format!("`{}` is not a valid {what}", token.text)))
}

/// An unsigned number within `range`, named `what` in errors.
pub fn number_in(
    token: Token<'_>,
    what: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, Problem> {
    let value: u32 = number(token, what)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Problem::new(
            token.loc,
            format!(
                "{what} {value} is out of range {}-{}",
                range.start(),
                range.end()
            ),
        ))
    }
}

pub fn ip(token: Token<'_>) -> Result<IpAddr, Problem> {
    ip_at(token.text, token.loc)
}

fn ip_at(text: &str, loc: Loc) -> Result<IpAddr, Problem> {
    text.parse().map_err(|_| {
        let hint = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .filter(|inner| inner.parse::<Ipv6Addr>().is_ok())
            .map(|inner| {
                format!("brackets only go round an IPv6 address a port follows; write `{inner}`")
            });
        Problem::new(loc, format!("`{text}` is not an IP address")).with_hint(hint)
    })
}

/// A dotted netmask such as `255.255.255.0`, as a prefix length.
pub fn netmask(text: &str, loc: Loc) -> Result<u8, Problem> {
    let mask = text
        .parse::<Ipv4Addr>()
        .map_err(|_| Problem::new(loc, format!("`{text}` is not a netmask")))?;
    mask_to_prefix(mask).ok_or_else(|| {
        Problem::new(
            loc,
            format!("netmask `{text}` is not contiguous (its one bits must come first)"),
        )
    })
}

/// `ADDR/PREFIX`, or for IPv4 also `A.B.C.D/DOTTED.MASK`; a bare address only when
/// `bare_is_host`.
pub fn ip_net(token: Token<'_>, bare_is_host: bool) -> Result<IpNet, Problem> {
    let Some((addr, mask)) = token.text.split_once('/') else {
        if bare_is_host {
            return ip(token).map(IpNet::host);
        }
        let example = match ip(token).map(Family::of) {
            Ok(Family::Ipv6) => format!("write `{}/64` or `{}/128`", token.text, token.text),
            _ => format!("write `{}/24` or `{}/32`", token.text, token.text),
        };
        return Err(Problem::new(
            token.loc,
            format!("`{}` needs a prefix length or netmask", token.text),
        )
        .with_hint(Some(example)));
    };
    let addr = ip_at(addr, token.loc)?;
    let mask_loc = Loc::new(
        token.loc.line,
        token.loc.col + u32::try_from(token.text.find('/').unwrap_or(0) + 1).unwrap_or(0),
    );
    let family = Family::of(addr);
    let prefix = if mask.contains('.') && family == Family::Ipv4 {
        netmask(mask, mask_loc)?
    } else {
        match mask.parse::<u8>() {
            Ok(prefix) if prefix <= family.max_prefix() => prefix,
            _ if family == Family::Ipv6 => {
                return Err(Problem::new(
                    mask_loc,
                    format!("`{mask}` is not a prefix length 0-128"),
                ));
            }
            _ => {
                return Err(Problem::new(
                    mask_loc,
                    format!("`{mask}` is not a prefix length 0-32 or a netmask"),
                ));
            }
        }
    };
    Ok(IpNet { addr, prefix })
}

pub fn port(text: &str, loc: Loc) -> Result<Port, Problem> {
    if text.is_empty() {
        return Err(Problem::new(loc, "a port is missing"));
    }
    text.parse::<u16>()
        .ok()
        .and_then(Port::new)
        .ok_or_else(|| Problem::new(loc, format!("`{text}` is not a port 1-65535")))
}

/// `IPV4[:PORT]`, `[IPV6]:PORT` or a bare IPv6 address; a port of 0 means "any
/// port", the same as none.
pub fn ip_and_port(token: Token<'_>) -> Result<(IpAddr, Option<Port>), Problem> {
    let text = token.text;
    let (addr, port_text) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return Err(Problem::new(
                token.loc,
                format!("`{text}` opens a `[` it does not close"),
            ));
        };
        let inner_loc = Loc::new(token.loc.line, token.loc.col + 1);
        let addr = match inner.parse::<Ipv6Addr>() {
            Ok(addr) => IpAddr::V6(addr),
            Err(_) => {
                return Err(
                    Problem::new(inner_loc, format!("`{inner}` is not an IPv6 address")).with_hint(
                        Some(
                            "brackets go round an IPv6 address only: `[2001:db8::10]:80`"
                                .to_owned(),
                        ),
                    ),
                );
            }
        };
        match after.strip_prefix(':') {
            Some(port_text) => (addr, port_text),
            None if after.is_empty() => {
                return Err(
                    Problem::new(token.loc, format!("`{text}` has brackets but no port"))
                        .with_hint(Some(format!("write `{inner}` or `[{inner}]:PORT`"))),
                );
            }
            None => {
                return Err(Problem::new(
                    token.loc,
                    format!("`{text}`: after `]` comes `:` and a port"),
                ));
            }
        }
    } else {
        match text.rsplit_once(':') {
            Some((addr, port_text)) if !addr.contains(':') => (ip_at(addr, token.loc)?, port_text),
            _ => return Ok((ip(token)?, None)),
        }
    };
    let port_loc = Loc::new(
        token.loc.line,
        token.loc.col
            + u32::try_from(text.chars().count() - port_text.chars().count()).unwrap_or(0),
    );
    if port_text == "0" {
        return Ok((addr, None));
    }
    Ok((addr, Some(port(port_text, port_loc)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line's tokens as (text, line, column), whether it was unreadable, and
    /// the diagnostics.
    type Lexed = (Vec<(Vec<(String, u32, u32)>, bool)>, Vec<Diagnostic>);

    fn lex_all(source: &[u8], file: ConfigFile) -> Lexed {
        let mut lexer = Lexer::new(source, file);
        let mut lines = Vec::new();
        while let Some(line) = lexer.next_line() {
            let tokens = line
                .tokens
                .iter()
                .map(|t| (t.text.to_owned(), t.loc.line, t.loc.col))
                .collect();
            lines.push((tokens, line.unreadable));
        }
        (lines, lexer.diagnostics_then(Vec::new()))
    }

    #[test]
    fn tokens_carry_line_and_column_across_tabs_crlf_and_comments() {
        let (lines, _) = lex_all(
            b"# header\r\n\tdirector web  10.0.0.1:80 # trailing\r\n\n  server a 1.2.3.4",
            ConfigFile::Lvs,
        );
        assert_eq!(
            lines,
            vec![
                (
                    vec![
                        ("director".into(), 2, 2),
                        ("web".into(), 2, 11),
                        ("10.0.0.1:80".into(), 2, 16)
                    ],
                    false
                ),
                (
                    vec![
                        ("server".into(), 4, 3),
                        ("a".into(), 4, 10),
                        ("1.2.3.4".into(), 4, 12)
                    ],
                    false
                ),
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_column() {
        let (lines, diagnostics) = lex_all(b"flow a permit\nflow b\xff deny\n", ConfigFile::Flows);
        assert_eq!(
            lines
                .iter()
                .map(|(_, unreadable)| *unreadable)
                .collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(
            diagnostics[0].to_string(),
            "flows.conf:2:7: error: invalid UTF-8 (byte 0xff); configuration files are UTF-8 text"
        );
    }

    #[test]
    fn binary_input_stops_after_a_few_errors() {
        let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
        let (_, diagnostics) = lex_all(&binary, ConfigFile::Network);
        assert!(diagnostics.len() <= MAX_ENCODING_ERRORS + 1);
        assert!(diagnostics.iter().all(|d| d.is_error()));
    }
}
