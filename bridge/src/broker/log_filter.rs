//! Demotes rumqttd's routine disconnect chatter to debug.
//!
//! rumqttd 0.20 logs at ERROR what is ordinary bookkeeping:
//!
//! - `router-drop` (`server/broker.rs`): the router closed a client's link,
//!   which it does at every DISCONNECT and at shutdown. When the router drops
//!   a client for a real reason it has already logged that reason (for
//!   example `Failed to append to commitlog`), so this line adds nothing.
//! - `no-connection id N is already gone` (`router/routing.rs`): the second
//!   of the two disconnect events a client that sends DISCONNECT and then
//!   closes its socket produces.
//!
//! [`RumqttdNoise`] is a [`Layer`] that only filters: it matches exactly
//! these two messages from rumqttd's targets and lets them through only when
//! the user asked for rumqttd's debug output (`--log-level rumqttd=debug`),
//! as if rumqttd had logged them at debug. Every other rumqttd line, its
//! real link errors (`disconnected` with an I/O or protocol error, `Remote
//! link error`) included, is untouched. The bridge's logging setup adds it
//! on top of its formatter; this module owns nothing else.

use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Filters rumqttd's routine `router-drop` / `no-connection id … already
/// gone` ERROR lines (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct RumqttdNoise {
    /// Show them anyway: the user asked for rumqttd at debug.
    show: bool,
}

impl RumqttdNoise {
    /// The filter for a `--log-level` directive list: the demoted lines
    /// show only if it enables `rumqttd` (or a module of it) at debug or
    /// trace.
    pub fn for_directives(directives: &str) -> Self {
        let show = directives.split(',').any(|d| {
            let d = d.trim();
            let Some((target, level)) = d.split_once('=') else {
                return false;
            };
            (target == "rumqttd" || target.starts_with("rumqttd::"))
                && matches!(
                    level.trim().to_ascii_lowercase().as_str(),
                    "debug" | "trace"
                )
        });
        RumqttdNoise { show }
    }
}

/// Is this event one of rumqttd's routine disconnect lines?
pub fn is_routine_disconnect(event: &Event<'_>) -> bool {
    let meta = event.metadata();
    if *meta.level() != Level::ERROR || !meta.target().starts_with("rumqttd") {
        return false;
    }
    let mut message = MessageText::default();
    event.record(&mut message);
    let text = message.0.as_str();
    text == "router-drop"
        || (text.starts_with("no-connection id ") && text.ends_with(" is already gone"))
}

impl<S: Subscriber> Layer<S> for RumqttdNoise {
    fn event_enabled(&self, event: &Event<'_>, _cx: Context<'_, S>) -> bool {
        self.show || !is_routine_disconnect(event)
    }
}

/// The `message` field of an event, as formatted.
#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            // The message is short (rumqttd's format strings); the other
            // fields, which may be long, are not formatted at all.
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demoted_lines_show_only_when_rumqttd_debug_is_asked_for() {
        assert!(!RumqttdNoise::for_directives("info").show);
        assert!(!RumqttdNoise::for_directives("debug,rumqttd=warn").show);
        assert!(RumqttdNoise::for_directives("info,rumqttd=debug").show);
        assert!(RumqttdNoise::for_directives("rumqttd::server=TRACE").show);
        assert!(!RumqttdNoise::for_directives("rumqttdx=debug").show);
    }
}
