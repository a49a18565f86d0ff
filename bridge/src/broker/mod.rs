//! MQTT: the embedded broker (rumqttd, in-process, behind Hearth's own
//! front), and the client link (rumqttc) that every part of the bridge
//! shares.
//!
//! - [`embedded`]: rumqttd's configuration and thread.
//! - [`front`]: the listener clients reach; relays to rumqttd on loopback.
//! - [`tls`], [`access`]: the front's TLS termination, authentication and
//!   topic rights (DESIGN.md §8).
//! - [`sessions`]: client-id takeover, done before rumqttd sees it (why:
//!   rumqttd 0.20 drops the new connection when two overlap).
//! - [`wire`]: the MQTT 3.1.1 packet rewrite the front applies (why: rumqttd
//!   0.20 lets a non-retained empty publish erase a retained message).
//! - [`link`]: the bridge's one client connection.
//! - [`client`]: rumqttc options (credentials, TLS) for any of Hearth's clients.

pub mod access;
pub mod allocator;
pub mod client;
pub mod embedded;
pub mod front;
pub mod link;
pub mod log_filter;
pub mod sessions;
pub mod tls;
pub mod wire;

pub use embedded::{BrokerOptions, EmbeddedBroker};
pub use link::{BrokerAddress, Message, MqttLink, Subscription, excerpt};
