//! Strip balancer: many laptops on one wall socket, never over a limit,
//! everyone charged (Hearth issue 14, item 3). The logic of the
//! `builtin:strip-balancer` controller plugin and of its comparison
//! strategies (`builtin:all-on`, `builtin:first-come`,
//! `builtin:round-robin`); the components are the thin crates in `wasm/`,
//! one per strategy (one `export_controller!` each). Tested natively with
//! the SDK's harness.
//!
//! - [`config`]: the JSON config (circuit tree, strips, outlets, users,
//!   tariff, opening hours) and its checks;
//! - [`tree`]: the circuit tree as indices; [`tree::limits`]: committed
//!   load per node, fitting and shedding;
//! - [`meter`]: an outlet's switch, meter and committed draw (stale = full);
//! - [`need`]: who holds an outlet, over-limit users, the target latch
//!   and the empty seat;
//! - [`departure`]: charge-by-departure (urgent, holding) from learned
//!   charge and drain rates;
//! - [`tariff`]: off-peak/peak period and its targets and parallelism;
//! - [`plan`]: what a strategy sees and decides, and why;
//! - [`allocation`]: the balancer's strategy;
//! - [`baselines`]: all-on, first-come, round-robin;
//! - [`entities`]: the plugin's `allowed`/`why` and headroom entities;
//! - [`plugin`]: the shell (read, opening hours, act, publish) as a
//!   [`hearth_plugin_sdk::Controller`].
//!
//! Units: A, W, V, %, s in the config; ms of host time inside.

pub mod allocation;
pub mod baselines;
pub mod config;
pub mod departure;
pub mod entities;
pub mod meter;
pub mod need;
pub mod plan;
pub mod plugin;
pub mod tariff;
pub mod tree;

#[cfg(test)]
mod tests;

/// The balancer plugin.
pub type StripBalancer = plugin::Plugin<allocation::Balancer>;
/// Every outlet on.
pub type AllOn = plugin::Plugin<baselines::AllOn>;
/// EVCC-like first come, first served.
pub type FirstCome = plugin::Plugin<baselines::FirstCome>;
/// Fixed time slots.
pub type RoundRobin = plugin::Plugin<baselines::RoundRobin>;
