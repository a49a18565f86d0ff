//! `builtin:tariff-optimizer`: the optimizer (a MILP plan of the flexible loads
//! against prices, PV and base load). The logic and its tests are in
//! `plugins/tariff-optimizer`; this crate only exports it as a component.

hearth_plugin_sdk::export_controller!(hearth_tariff_optimizer::TariffOptimizer);
