//! `builtin:first-come`: EVCC-like first come, first served. The logic and its tests are in
//! `plugins/strip-balancer`; this crate only exports it as a component.

hearth_plugin_sdk::export_controller!(hearth_strip_balancer::FirstCome);
