//! MQTT: the embedded broker (rumqttd, in-process) and the client link
//! (rumqttc) that every part of the bridge shares.

pub mod embedded;
pub mod link;

pub use embedded::EmbeddedBroker;
pub use link::{BrokerAddress, Message, MqttLink, excerpt};
