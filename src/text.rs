//! Text from files, the kernel or the environment, made safe to print on a
//! terminal. A character a terminal would obey rather than show — C0 and C1
//! controls, DEL, and the bidirectional overrides and isolates that reorder what
//! is shown — is printed as its escape `\u001b`. That is the escape JSON uses, so
//! text and JSON output show the same thing, and escaping under JSON output
//! leaves it valid JSON that still decodes to what was given.
//!
//! The data itself is kept as it was given (a version's summary, a user name);
//! only what is printed is escaped.

use std::borrow::Cow;
use std::fmt::{self, Display, Write as _};
use std::io;

/// Whether a terminal would act on `c` instead of showing it.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether newlines and tabs are shown as they are (multi-line output: a diff,
/// an error quoting a file) or escaped (a field printed within one line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Kept,
    Escaped,
}

fn must_escape(c: char, layout: Layout) -> bool {
    is_unsafe(c) && !(layout == Layout::Kept && matches!(c, '\n' | '\t'))
}

/// `text` to print within one line: every unsafe character escaped, newline and
/// tab too, so a field can neither act on the terminal nor start a forged line.
pub fn printable(text: &str) -> Cow<'_, str> {
    escaped(text, Layout::Escaped)
}

fn escaped(text: &str, layout: Layout) -> Cow<'_, str> {
    if !text.chars().any(|c| must_escape(c, layout)) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    push_escaped(&mut shown, text, layout);
    Cow::Owned(shown)
}

fn push_escaped(shown: &mut String, text: &str, layout: Layout) {
    for c in text.chars() {
        if must_escape(c, layout) {
            // Every unsafe character is below U+FFFF: four digits, as in JSON.
            let _ = write!(shown, "\\u{:04x}", u32::from(c));
        } else {
            shown.push(c);
        }
    }
}

/// Displays a value as [`printable`] does: one line, every unsafe character
/// escaped. Width and alignment (`{:<12}`) apply to the escaped text.
pub struct Printable<T>(pub T);

impl<T: Display> Display for Printable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&printable(&self.0.to_string()))
    }
}

/// A writer that escapes every unsafe character of what goes through it, except
/// newline and tab, which lay out the output. The CLI writes its stdout and
/// stderr through one, so no line it prints can reach the terminal raw. Bytes
/// that are not UTF-8 are printed as U+FFFD.
pub struct EscapingWriter<W: io::Write> {
    inner: W,
    /// The start of a character whose last bytes the next write brings.
    incomplete: Vec<u8>,
}

impl<W: io::Write> EscapingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            incomplete: Vec::new(),
        }
    }
}

impl<W: io::Write> io::Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let joined;
        let bytes = if self.incomplete.is_empty() {
            buf
        } else {
            self.incomplete.extend_from_slice(buf);
            joined = std::mem::take(&mut self.incomplete);
            &joined[..]
        };
        let (shown, incomplete) = escape_bytes(bytes);
        self.inner.write_all(shown.as_bytes())?;
        self.incomplete = incomplete.to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: io::Write> Drop for EscapingWriter<W> {
    fn drop(&mut self) {
        if !self.incomplete.is_empty() {
            let _ = self
                .inner
                .write_all(char::REPLACEMENT_CHARACTER.to_string().as_bytes());
        }
    }
}

/// `bytes` as they are to be shown (newlines and tabs kept), and the trailing
/// bytes of a character cut short, which may be completed by what follows.
fn escape_bytes(bytes: &[u8]) -> (String, &[u8]) {
    let mut shown = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                push_escaped(&mut shown, text, Layout::Kept);
                return (shown, &[]);
            }
            Err(error) => {
                let (valid, after) = rest.split_at(error.valid_up_to());
                // The bytes up to `valid_up_to` are UTF-8: the fallback never runs.
                push_escaped(
                    &mut shown,
                    std::str::from_utf8(valid).unwrap_or(""),
                    Layout::Kept,
                );
                match error.error_len() {
                    Some(invalid) => {
                        shown.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[invalid..];
                    }
                    None => return (shown, after),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn controls_dels_c1_and_bidi_overrides_are_shown_as_json_escapes() {
        assert_eq!(
            printable("a\u{1b}[31mb\u{7}\u{7f}\u{9b}\u{202e}\u{2066}z"),
            r"a\u001b[31mb\u0007\u007f\u009b\u202e\u2066z"
        );
    }

    #[test]
    fn one_line_text_escapes_newline_tab_and_carriage_return() {
        assert_eq!(printable("a\nb\tc\rd"), r"a\u000ab\u0009c\u000dd");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "alice: lvs.conf +director web; é ü 日本 \\ \"";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn printable_pads_the_escaped_text() {
        assert_eq!(format!("[{:<8}]", Printable("a\u{1b}")), r"[a\u001b ]");
    }

    fn through_writer(pieces: &[&[u8]]) -> String {
        let mut out = Vec::new();
        {
            let mut writer = EscapingWriter::new(&mut out);
            for piece in pieces {
                writer.write_all(piece).expect("write to a Vec");
            }
        }
        String::from_utf8(out).expect("the writer writes UTF-8")
    }

    #[test]
    fn the_writer_keeps_lines_and_tabs_and_escapes_the_rest() {
        assert_eq!(
            through_writer(&[b"a\tb\n\x1b]0;x\x07\r\n"]),
            "a\tb\n\\u001b]0;x\\u0007\\u000d\n"
        );
    }

    #[test]
    fn the_writer_escapes_a_c1_control_split_across_writes() {
        // U+009B (CSI) is C2 9B in UTF-8; U+202E is E2 80 AE.
        assert_eq!(
            through_writer(&[b"a\xc2", b"\x9bb\xe2\x80", b"\xaec"]),
            r"a\u009bb\u202ec"
        );
    }

    #[test]
    fn the_writer_shows_bytes_that_are_not_utf8_as_replacement_characters() {
        assert_eq!(through_writer(&[b"a\x9bb\xff"]), "a\u{fffd}b\u{fffd}");
        assert_eq!(through_writer(&[b"a\xe2\x80"]), "a\u{fffd}");
    }

    #[test]
    fn json_through_the_writer_stays_valid_and_decodes_to_what_was_given() {
        let given = "\u{1b}]0;x\u{7}\u{7f}\u{85}\u{9b}\u{202e}\u{2069}\\\n\t\"";
        let json =
            serde_json::to_string_pretty(&serde_json::json!({ "name": given })).expect("serialize");
        let shown = through_writer(&[json.as_bytes()]);
        assert!(!shown.chars().any(|c| is_unsafe(c) && c != '\n'), "{shown}");
        let decoded: serde_json::Value = serde_json::from_str(&shown).expect("valid JSON");
        assert_eq!(decoded["name"], given);
    }
}
