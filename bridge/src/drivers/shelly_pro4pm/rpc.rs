//! Gen2 RPC frames for the Pro 4PM: the shared parsers of
//! [`crate::drivers::shelly_rpc`] (frame shapes and their Shelly sources
//! are documented there), bound to its four switches.

use super::config::OUTLETS;
pub use crate::drivers::shelly_rpc::{
    OutletStatus, Response, RpcError, parse_online, parse_response, parse_switch, request,
};

/// A frame on `<prefix>/events/rpc`: the switch updates of a
/// `NotifyStatus`, `Ok(None)` for other notifications.
pub fn parse_notification(payload: &[u8]) -> Result<Option<Vec<(usize, OutletStatus)>>, RpcError> {
    crate::drivers::shelly_rpc::parse_notification(payload, OUTLETS)
}
