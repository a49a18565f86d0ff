//! The bridge's [`FormatFields`]: every field of every event and span is
//! written through [`Escaper`], each capped, and all of one event's fields
//! together capped, so no call site can forget to escape outside input and
//! no line can grow past [`MAX_FIELDS`] plus its fixed prefix (time, level).
//!
//! The output has the default formatter's shape (`message key=value …`), so
//! log readers and the tests' log marks see the same lines as before.

use super::escape::Escaper;
use std::fmt::{self, Write};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Longest message, bytes after escaping: room for a reason with a few ids
/// in it (the longest line the bridge writes itself is a config error of a
/// few hundred bytes); a 1 MB id inside it keeps its head and tail.
pub const MAX_MESSAGE: usize = 3 * 1024;
/// Longest value of any other field (`topic=…`, a span's `client_id=…`).
pub const MAX_VALUE: usize = 1024;
/// All fields of one event or span together; what is left when it runs out
/// is counted, not written. With the prefix (≈ 40 bytes of time and level;
/// targets are off) a line stays under 4 KiB + 64 bytes.
pub const MAX_FIELDS: usize = 4 * 1024;

/// Formats fields escaped and capped; see the module doc.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            budget: MAX_FIELDS,
            first: true,
            skipped: 0,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result?;
        if visitor.skipped > 0 {
            write!(visitor.writer, " …[{} more fields cut]", visitor.skipped)?;
        }
        Ok(())
    }
}

struct Visitor<'writer> {
    writer: Writer<'writer>,
    /// Bytes of field text this record may still write.
    budget: usize,
    first: bool,
    skipped: usize,
    result: fmt::Result,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        let is_message = name == "message";
        let cap = if is_message { MAX_MESSAGE } else { MAX_VALUE };
        // The name is ours (a static identifier) but counts against the line.
        let overhead = if is_message { 0 } else { name.len() + 2 };
        if self.budget <= overhead + 16 {
            self.skipped += 1;
            return;
        }
        let cap = cap.min(self.budget - overhead);
        let first = std::mem::replace(&mut self.first, false);
        match write_field(&mut self.writer, first, name, is_message, cap, value) {
            Ok(written) => self.budget = self.budget.saturating_sub(overhead + written),
            Err(e) => self.result = Err(e),
        }
    }
}

/// Writes ` name=value` (or the message), escaped and capped at `cap`;
/// returns the bytes of the value written.
fn write_field(
    writer: &mut Writer<'_>,
    first: bool,
    name: &str,
    is_message: bool,
    cap: usize,
    value: fmt::Arguments<'_>,
) -> Result<usize, fmt::Error> {
    if !first {
        writer.write_char(' ')?;
    }
    if !is_message {
        write!(writer, "{}=", name.strip_prefix("r#").unwrap_or(name))?;
    }
    let mut counter = Counted { out: writer, n: 0 };
    let mut e = Escaper::new(&mut counter, cap);
    e.write_fmt(value)?;
    e.finish()?;
    Ok(counter.n)
}

/// Counts the bytes written through it.
struct Counted<'a, W: Write> {
    out: &'a mut W,
    n: usize,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.n += s.len();
        self.out.write_str(s)
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write(field, format_args!("{value}"));
        } else {
            // Like the default formatter: strings in quotes.
            self.write(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Formats `emit`'s events with [`EscapedFields`] and returns the text.
    fn capture(emit: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(EscapedFields)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_forged_line_stays_inside_its_own_line() {
        let id = "ghost\n2026-12-06T00:00:00Z  INFO FORGED: admin logged in\0";
        let out =
            capture(|| tracing::warn!("telemetry from node `{id}` that has not announced itself"));
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!out.contains('\0'));
        assert!(out.contains("ghost\\n2026-12-06T00:00:00Z  INFO FORGED"));
        assert!(out.ends_with("that has not announced itself\n"));
    }

    #[test]
    fn fields_are_escaped_and_every_line_is_capped() {
        let huge = "x".repeat(1 << 20);
        let out = capture(
            || tracing::warn!(topic = %huge, other = %huge, more = ?huge, "node `{huge}` refused"),
        );
        assert_eq!(out.lines().count(), 1);
        assert!(out.len() <= MAX_FIELDS + 64, "{} bytes", out.len());
        assert!(out.contains("bytes cut]…"));
        assert!(out.contains("refused"), "the message's tail is kept");
        let out = capture(|| tracing::info!(topic = "a\nb", "ok"));
        assert_eq!(out, " INFO ok topic=\"a\\nb\"\n");
    }
}
