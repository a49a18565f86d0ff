//! `builtin:strip-balancer`: the balancer. The logic and its tests are in
//! `plugins/strip-balancer`; this crate only exports it as a component.

hearth_plugin_sdk::export_controller!(hearth_strip_balancer::StripBalancer);
