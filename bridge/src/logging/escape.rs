//! Escaping and capping of every value that reaches the bridge's log.
//!
//! Anything in a log line may have come from outside (an MQTT topic, a
//! node's name, a WebSocket client's event type), so a value is never
//! written raw: control characters become visible escapes (a newline cannot
//! start a forged line, a NUL or an ESC cannot reach the terminal or the
//! journal), and a value longer than its cap keeps its head and tail with
//! the number of bytes cut between them (the tail usually says what went
//! wrong: "… that has not announced itself").
//!
//! [`Escaper`] is a [`fmt::Write`] adapter, so a value is escaped while it
//! is formatted: a 1 MB id costs a pass over it, never a 1 MB allocation.

use std::collections::VecDeque;
use std::fmt::{self, Write};

/// Is `c` written as an escape rather than as itself? Control characters
/// (C0, DEL, C1), and the Unicode characters that move or reorder text
/// on screen: line and paragraph separators, bidirectional overrides and
/// isolates ("Trojan Source", CVE-2021-42574).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `c` as Rust writes it in a string literal: `\n`, `\r`, `\t`,
/// `\0`, `\x1b` for the other ASCII controls, `\u{2028}` beyond ASCII.
fn write_escaped(out: &mut impl Write, c: char) -> fmt::Result {
    match c {
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        '\0' => out.write_str("\\0"),
        c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
        c => write!(out, "\\u{{{:x}}}", c as u32),
    }
}

/// Escapes what is written through it and keeps at most `cap` bytes of the
/// escaped text: the first three quarters as they come, the last quarter
/// from the end, and between them `…[N bytes cut]…` once [`Escaper::finish`]
/// is called. Counting is in bytes of the escaped text, cut on char
/// boundaries.
pub struct Escaper<'a, W: Write + ?Sized> {
    out: &'a mut W,
    head_left: usize,
    tail: VecDeque<char>,
    tail_bytes: usize,
    tail_cap: usize,
    cut: usize,
}

impl<'a, W: Write + ?Sized> Escaper<'a, W> {
    pub fn new(out: &'a mut W, cap: usize) -> Self {
        let tail_cap = cap / 4;
        Escaper {
            out,
            head_left: cap - tail_cap,
            tail: VecDeque::new(),
            tail_bytes: 0,
            tail_cap,
            cut: 0,
        }
    }

    fn push(&mut self, s: &str) -> fmt::Result {
        if self.head_left >= s.len() && self.tail.is_empty() {
            self.head_left -= s.len();
            return self.out.write_str(s);
        }
        for c in s.chars() {
            let n = c.len_utf8();
            if self.tail.is_empty() && self.head_left >= n {
                self.head_left -= n;
                self.out.write_char(c)?;
                continue;
            }
            // The head is full: the rest goes through the tail window.
            self.head_left = 0;
            self.tail.push_back(c);
            self.tail_bytes += n;
            while self.tail_bytes > self.tail_cap {
                let dropped = self.tail.pop_front().map_or(0, char::len_utf8);
                self.tail_bytes -= dropped;
                self.cut += dropped;
            }
        }
        Ok(())
    }

    /// Bytes of escaped text left out so far.
    pub fn cut(&self) -> usize {
        self.cut
    }

    /// Writes the kept tail (after the cut mark, if anything was cut).
    /// Returns the number of bytes cut.
    pub fn finish(self) -> Result<usize, fmt::Error> {
        if self.cut > 0 {
            write!(self.out, "…[{} bytes cut]…", self.cut)?;
        }
        for c in &self.tail {
            self.out.write_char(*c)?;
        }
        Ok(self.cut)
    }
}

impl<W: Write + ?Sized> Write for Escaper<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Runs of plain text are pushed whole; escapes one by one.
        let mut start = 0;
        for (i, c) in s.char_indices() {
            if needs_escape(c) {
                self.push(&s[start..i])?;
                let mut buf = String::with_capacity(10);
                write_escaped(&mut buf, c)?;
                self.push(&buf)?;
                start = i + c.len_utf8();
            }
        }
        self.push(&s[start..])
    }
}

/// `value` escaped and capped at `cap` bytes, as a `String` (for the few
/// places that keep a line rather than write it: the plugins' log book).
pub fn escaped(value: &str, cap: usize) -> String {
    let mut out = String::with_capacity(value.len().min(cap + 32));
    let mut e = Escaper::new(&mut out, cap);
    let _ = e.write_str(value);
    let _ = e.finish();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        let forged = "ghost\n2026-12-06T00:00:00Z  INFO FORGED: admin logged in";
        let out = escaped(forged, 1024);
        assert!(!out.contains('\n'));
        assert_eq!(
            out,
            "ghost\\n2026-12-06T00:00:00Z  INFO FORGED: admin logged in"
        );
        assert_eq!(
            escaped("a\0b\r\t\u{1b}[31m\u{7f}", 64),
            "a\\0b\\r\\t\\x1b[31m\\x7f"
        );
        assert_eq!(
            escaped("x\u{85}y\u{2028}z\u{202e}", 64),
            "x\\u{85}y\\u{2028}z\\u{202e}"
        );
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        let s = "hearth-node/server-room/telemetry: température 21.5 °C \\n stays";
        assert_eq!(escaped(s, 1024), s);
    }

    #[test]
    fn long_values_keep_head_and_tail_and_say_how_much_was_cut() {
        let value = format!("{}END", "a".repeat(1_000_000));
        let out = escaped(&value, 1024);
        assert!(out.len() <= 1024 + 40, "{} bytes", out.len());
        assert!(out.starts_with("aaaa"));
        assert!(out.ends_with("aaEND"));
        let kept = 1024;
        assert!(
            out.contains(&format!("…[{} bytes cut]…", value.len() - kept)),
            "{out}"
        );
    }

    #[test]
    fn the_cap_counts_escapes_and_respects_char_boundaries() {
        let out = escaped(&"é\n".repeat(10_000), 100);
        assert!(out.len() <= 100 + 40);
        assert!(!out.contains('\n'));
        // Every char kept is whole (the String would not exist otherwise);
        // the count is of escaped bytes: 10 000 × (2 + 2) − 100 kept.
        assert!(out.contains("…[39900 bytes cut]…"), "{out}");
    }

    #[test]
    fn a_value_at_the_cap_is_not_cut() {
        let s = "b".repeat(100);
        assert_eq!(escaped(&s, 100), s);
        assert!(escaped(&"b".repeat(101), 100).contains("…[1 bytes cut]…"));
    }
}
