//! Each plugin's recent log lines: what it logged through the `log` import
//! and what the host did to it (faults, restarts, swaps). `hearth plugin
//! logs` reads them; everything also goes to the bridge's own log.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Lines kept per plugin; older ones are dropped first.
pub const LINES_KEPT: usize = 1000;
/// Longest line kept, bytes (a plugin could log megabytes).
pub const MAX_LINE: usize = 4096;

/// Escapes control characters (a plugin's `\n` cannot forge a line in
/// `hearth plugin logs`) and cuts a message to [`MAX_LINE`] bytes, keeping
/// its head and tail and saying how many bytes were cut
/// ([`crate::logging::escape`]).
pub fn cap_line(message: &mut String) {
    if message.len() > MAX_LINE || message.chars().any(crate::logging::escape::needs_escape) {
        *message = crate::logging::escape::escaped(message, MAX_LINE);
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogLine {
    /// Host time, ms since the epoch.
    pub time_ms: i64,
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// `plugin` (its own `log` call) or `host`.
    pub source: &'static str,
    pub message: String,
}

#[derive(Default)]
pub struct LogBook {
    lines: Mutex<HashMap<String, VecDeque<LogLine>>>,
}

impl LogBook {
    pub fn push(&self, plugin: &str, mut line: LogLine) {
        cap_line(&mut line.message);
        let mut all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let lines = all.entry(plugin.to_string()).or_default();
        if lines.len() == LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines of a plugin, oldest first.
    pub fn tail(&self, plugin: &str, n: usize) -> Vec<LogLine> {
        let all = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        all.get(plugin)
            .map(|l| l.iter().skip(l.len().saturating_sub(n)).cloned().collect())
            .unwrap_or_default()
    }

    pub fn forget(&self, plugin: &str) {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(plugin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> LogLine {
        LogLine {
            time_ms: i as i64,
            level: "info",
            source: "plugin",
            message: format!("line {i}"),
        }
    }

    #[test]
    fn keeps_the_most_recent_lines_in_order() {
        let book = LogBook::default();
        for i in 0..LINES_KEPT + 10 {
            book.push("p", line(i));
        }
        let tail = book.tail("p", 3);
        let times: Vec<i64> = tail.iter().map(|l| l.time_ms).collect();
        let last = (LINES_KEPT + 9) as i64;
        assert_eq!(times, vec![last - 2, last - 1, last]);
        assert_eq!(book.tail("p", usize::MAX).len(), LINES_KEPT);
        assert!(book.tail("other", 5).is_empty());
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let book = LogBook::default();
        let mut l = line(0);
        l.message = "é".repeat(MAX_LINE);
        book.push("p", l);
        let kept = &book.tail("p", 1)[0].message;
        assert!(kept.len() <= MAX_LINE + 40);
        assert!(kept.contains("bytes cut]…"), "{kept}");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut m = "tick\n2026-12-06T00:00:00Z  INFO FORGED\0".to_string();
        cap_line(&mut m);
        assert_eq!(m, "tick\\n2026-12-06T00:00:00Z  INFO FORGED\\0");
    }
}
