//! Per-user metering and billing (issue 14, item 4), host-side so billing
//! does not depend on which balancing plugin runs.
//!
//! Every increase of an outlet's energy counter (Wh, `total_increasing`;
//! resets read as HA does, [`meter`]) is attributed to the user holding
//! the outlet when the reading arrives (a fixed `user`, or the state of a
//! `select.*` holder entity) and to the tariff in force then (price €/kWh
//! and `period` `HP`/`HC` of `sensor.tariff_price`,
//! [`crate::feeds::tariff_driver`]). Increments go to the recorder's
//! database as a [`ledger`] (user × local hour × tariff period: Wh, €),
//! and to each user's entities ([`entities`]): energy and cost of the
//! local day/week/month, restored from the ledger at start. Limits
//! ([`limits`]) notify through the alert hub at 80 % and 100 % once per
//! period, and at 100 % switch the user's outlets off through the service
//! router (so the safety envelope applies) unless `off_at_limit = false`.
//! `hearth report usage` prints bills from the ledger ([`report`]).
//!
//! ```toml
//! [usage]
//! timezone = "Europe/Paris"        # days/weeks/months are local
//! week_starts = "monday"
//! tariff_entity = "sensor.tariff_price"
//! off_at_limit = true
//! [[usage.users]]
//! id = "alice"
//! name = "Alice"
//! limit_kwh_day = 1.5              # kWh; also limit_kwh_week, limit_kwh_month
//! limit_entity = "number.alice_limit"   # overrides limit_entity_period's limit (0 = none)
//! limit_entity_period = "day"
//! [[usage.outlets]]
//! energy_entity = "sensor.strip1_outlet1_energy"
//! switch_entity = "switch.strip1_outlet1"
//! user = "alice"                   # or user_entity = "select.strip1_outlet1_user"
//! ```
//!
//! Limits of attribution: a reading is attributed whole to the holder
//! when it arrives (the meter's report period, 10 s to 300 s for Tasmota,
//! is the resolution of a change of hands); energy used while the bridge
//! was down goes to the holder at the first reading after start: the
//! counter continues from the value the ledger last counted ([`baseline`],
//! written in the ledger's transaction), or from the last recorded reading
//! when the database has no baseline for the outlet yet.

pub mod baseline;
pub mod config;
pub mod entities;
pub mod ledger;
pub mod limits;
pub mod meter;
pub mod periods;
pub mod report;
mod runtime;

pub use config::UsageConfig;
pub use runtime::{UsageContext, spawn};

/// The ledger's user for energy of outlets nobody held (a holder `select`
/// at `none`, or at an unknown id).
pub const NOBODY: &str = "none";

/// The alert source of limit notifications.
pub const ALERT_SOURCE: &str = "usage";
