//! `builtin:fixed-times`: fixed times (what a person does: loads at set
//! hours). The logic and its tests are in
//! `plugins/tariff-optimizer`; this crate only exports it as a component.

hearth_plugin_sdk::export_controller!(hearth_tariff_optimizer::FixedTimes);
