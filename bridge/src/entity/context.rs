//! HA's `Context`: who or what caused a state change or a service call.
//!
//! Ids are ULIDs, as in HA core (`homeassistant.util.ulid`), so clients that
//! sort or parse them keep working. A service call's context is carried to
//! the state change it causes (see [`EntityStore::expect_change`]), so a
//! script can tell its own changes from everyone else's, as in HA.
//!
//! [`EntityStore::expect_change`]: super::EntityStore::expect_change

use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Context {
    pub id: String,
    pub parent_id: Option<String>,
    /// The caller: for the WebSocket and REST APIs, the id of the access
    /// token used (HA puts the user's id here; Hearth has tokens, not users).
    pub user_id: Option<String>,
}

impl Context {
    /// A fresh context, stamped with wall-clock time (ULIDs sort by it).
    pub fn new(user_id: Option<String>) -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Context {
            id: ulid::Ulid::from_parts(ms, fastrand::u128(..)).to_string(),
            parent_id: None,
            user_id,
        }
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_ulids_and_unique() {
        let a = Context::new(None);
        let b = Context::new(Some("tok".into()));
        assert_eq!(a.id.len(), 26);
        assert!(a.id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a.id, b.id);
        assert_eq!(b.user_id.as_deref(), Some("tok"));
    }
}
