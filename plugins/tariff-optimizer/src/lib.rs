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
//! - [`config`], [`time`]: the plugins' config and local times;
//!   [`inputs`]: forecasts and entities → a [`problem::Problem`];
//!   [`planner`]: the shell's view of a plan; [`drive`]: switch commands;
//!   [`shell`]: the optimizer plugin; [`baselines`]: fixed-times and
//!   off-peak-rule.
//! - [`model`]: the problem as a solver-neutral MILP ([`model::build`]);
//! - [`solve`]: solved by microlp with a node limit and a fallback chain
//!   ([`solve::plan`] → [`plan::Plan`]);
//! - [`check`]: every constraint checked on a plan;
//! - [`rule`]: the greedy rule plan (the last fallback);
//! - [`lp_file`]: the same model as CPLEX LP and free MPS.

pub mod baselines;
pub mod config;
pub mod drive;
pub mod inputs;
pub mod planner;
pub mod problem;
pub mod shell;
pub mod time;

pub mod check;
pub mod lp_file;
pub mod model;
pub mod plan;
pub mod rule;
pub mod samples;
pub mod solve;

pub use plan::{LoadPlan, Plan, Status};
pub use solve::{SolveConfig, plan};

/// What a person does: loads at set hours (`builtin:fixed-times`).
pub use baselines::fixed_times::FixedTimes;
/// The French off-peak contactor (`builtin:off-peak-rule`).
pub use baselines::off_peak_rule::OffPeakRule;
/// The optimizer plugin (`builtin:tariff-optimizer`).
pub use shell::TariffOptimizer;
