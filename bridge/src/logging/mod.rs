//! The bridge's log: what every line goes through, and how repeated
//! warnings about bad input are kept from flooding it.
//!
//! - [`escape`]: control characters in a value become visible escapes and
//!   long values are cut, saying how much (log forging, issue 12 item 3).
//! - [`fields`]: [`EscapedFields`], the `FormatFields` the subscriber is
//!   built with (`hearth`'s `init_logging`, the tests' harness), so every
//!   event and span field passes through [`escape`]; no call site has to
//!   remember to.
//! - [`rate`]: [`Throttle`], per-source rate limiting of warnings about
//!   invalid outside input (MQTT topics, devices, API clients), with a
//!   periodic "suppressed K similar warnings" summary.
//!
//! Owned by the logging work of issue 12; call sites only use
//! [`Throttle::admit`] and plain `tracing` macros.

pub mod escape;
pub mod fields;
pub mod rate;

pub use fields::EscapedFields;
pub use rate::Throttle;
