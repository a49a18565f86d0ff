//! Plugins compiled into the binary by `build.rs` (`wasm = "builtin:<name>"`).

/// (name, component bytes)
pub const BUILTIN: &[(&str, &[u8])] = &[
    (
        "thermostat",
        include_bytes!(env!("HEARTH_PLUGIN_THERMOSTAT")),
    ),
    // Misbehaves on purpose (trap, endless loop, unbounded allocation): for
    // checking that faults are contained. See plugins/fault-injector.
    (
        "fault-injector",
        include_bytes!(env!("HEARTH_PLUGIN_FAULT_INJECTOR")),
    ),
    // A second server-room strategy (PI on the AC's target temperature);
    // accepts the thermostat's config. See examples/custom-strategy.
    (
        "custom-strategy",
        include_bytes!(env!("HEARTH_PLUGIN_CUSTOM_STRATEGY")),
    ),
];

/// Resolves `builtin:<name>` or reads a `.wasm` file.
pub fn load_bytes(wasm: &str) -> anyhow::Result<Vec<u8>> {
    if let Some(name) = wasm.strip_prefix("builtin:") {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b.to_vec())
            .ok_or_else(|| anyhow::anyhow!("no built-in plugin `{name}` (built-in: {names:?})"));
    }
    std::fs::read(wasm).map_err(|e| anyhow::anyhow!("reading plugin {wasm}: {e}"))
}
