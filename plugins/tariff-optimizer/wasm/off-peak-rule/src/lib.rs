//! `builtin:off-peak-rule`: the off-peak rule (the French "heures creuses"
//! contactor). The logic and its tests are in
//! `plugins/tariff-optimizer`; this crate only exports it as a component.

hearth_plugin_sdk::export_controller!(hearth_tariff_optimizer::OffPeakRule);
