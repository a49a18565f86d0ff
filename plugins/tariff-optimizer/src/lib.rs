//! # Tariff optimizer
//!
//! Plans the house's flexible loads (water heater, washing machine,
//! dishwasher, EV) over a 24–48 h horizon against the import price, the
//! export price, the PV forecast and the base-load forecast, as a
//! mixed-integer linear program in the spirit of EMHASS
//! (davidusb-geek/emhass, `optimization.py`), solved inside the plugin by
//! `microlp`.
//!
//! - [`problem`]: what is planned (the contract between the plugin shell,
//!   the solver, the LP export and `hearth plan`).

pub mod problem;
