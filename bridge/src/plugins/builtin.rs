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
    // MPC heating: a grey-box house model fitted with argmin, a 24 h
    // horizon solved with clarabel. See plugins/mpc.
    ("mpc", include_bytes!(env!("HEARTH_PLUGIN_MPC"))),
    // Anomaly score and alert per numeric stream (baselines, Half-Space Trees, likelihood). See plugins/anomaly-detector.
    (
        "anomaly-detector",
        include_bytes!(env!("HEARTH_PLUGIN_ANOMALY_DETECTOR")),
    ),
    // Strip balancing: many laptops on one socket within every circuit's
    // limit, and the strategies it is compared with. See plugins/strip-balancer.
    (
        "strip-balancer",
        include_bytes!(env!("HEARTH_PLUGIN_STRIP_BALANCER")),
    ),
    ("all-on", include_bytes!(env!("HEARTH_PLUGIN_ALL_ON"))),
    (
        "first-come",
        include_bytes!(env!("HEARTH_PLUGIN_FIRST_COME")),
    ),
    (
        "round-robin",
        include_bytes!(env!("HEARTH_PLUGIN_ROUND_ROBIN")),
    ),
    // The tariff optimizer (a MILP plan of the house's flexible loads
    // against prices, PV and base load) and the strategies it is compared
    // with. See plugins/tariff-optimizer.
    (
        "tariff-optimizer",
        include_bytes!(env!("HEARTH_PLUGIN_TARIFF_OPTIMIZER")),
    ),
    (
        "fixed-times",
        include_bytes!(env!("HEARTH_PLUGIN_FIXED_TIMES")),
    ),
    (
        "off-peak-rule",
        include_bytes!(env!("HEARTH_PLUGIN_OFF_PEAK_RULE")),
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
    read_file(std::path::Path::new(wasm))
}

/// Largest plugin file accepted; ours are ≈ 0.2 MiB.
pub const MAX_WASM_BYTES: u64 = 64 << 20;

/// Reads a regular file of at most [`MAX_WASM_BYTES`] (not a FIFO or a
/// device, which could block or never end).
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let shown = path.display();
    let file =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("reading plugin {shown}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("reading plugin {shown}: {e}"))?;
    anyhow::ensure!(meta.is_file(), "plugin {shown} is not a regular file");
    anyhow::ensure!(
        meta.len() <= MAX_WASM_BYTES,
        "plugin {shown} is {} MiB; at most {} MiB is accepted",
        meta.len() >> 20,
        MAX_WASM_BYTES >> 20
    );
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_WASM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading plugin {shown}: {e}"))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_WASM_BYTES,
        "plugin {shown} grew past {} MiB while being read",
        MAX_WASM_BYTES >> 20
    );
    Ok(bytes)
}
