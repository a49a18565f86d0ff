//! The coworking space of Hearth issue 14 ("SmartMulti"): laptops sharing
//! metered relay strips under one wall circuit, for `hearth simulate`'s
//! coworking scenarios ([`crate::twin::batch::coworking`]).
//!
//! - [`laptop`]: battery, charger (constant power, taper above 80 %), use;
//! - [`space`]: strips and outlets in a [`crate::twin::circuit`] tree of
//!   breakers, the lamp, who sits where;
//! - [`arrivals`]: a seeded, reproducible day of arrivals.

pub mod arrivals;
pub mod laptop;
pub mod space;

pub use laptop::{Laptop, LaptopSpec};
pub use space::{Presence, Space, SpaceSpec};
