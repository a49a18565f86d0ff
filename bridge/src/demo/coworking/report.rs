//! What `hearth demo --scenario coworking` prints at the end.

/// What the demo measured: the twin's ground truth, and each user's
/// energy as the bridge's usage entities bill it.
#[derive(Debug, Clone, Default)]
pub struct CoworkingReport {
    pub scenario: String,
    pub simulated_h: f64,
    /// Local time of the start and the end, `HH:MM`.
    pub from: String,
    pub to: String,
    pub circuit_limit_a: f64,
    pub peak_circuit_a: f64,
    /// Sim s with the wall circuit or a strip above its rating.
    pub seconds_over: f64,
    /// Episodes over a rating, and the largest excess, A.
    pub over_episodes: u64,
    pub max_over_a: f64,
    /// (local `HH:MM`, breaker) of every trip.
    pub trips: Vec<(String, String)>,
    /// Wall energy the laptops took (real power), kWh.
    pub energy_kwh: f64,
    /// Laptops that came in so far.
    pub arrived: usize,
    /// Laptops that left, and of those how many at ≥ their target.
    pub left: usize,
    pub left_at_target: usize,
    /// Laptops whose battery is now above its arrival level.
    pub batteries_rose: usize,
    /// Lowest battery of a laptop while it had a seat, %.
    pub lowest_battery_pct: Option<f64>,
    /// Relay changes of the switchable outlets (the balancer's).
    pub relay_switches: u64,
    /// `sensor.<user>_energy_today`, kWh, largest first.
    pub user_kwh: Vec<(String, f64)>,
}

impl CoworkingReport {
    /// No breaker tripped and no rating was exceeded.
    pub fn held(&self) -> bool {
        self.trips.is_empty() && self.seconds_over == 0.0
    }
}

impl std::fmt::Display for CoworkingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Coworking demo summary ({}, {:.1} simulated hours, {}–{}):",
            self.scenario, self.simulated_h, self.from, self.to
        )?;
        writeln!(
            f,
            "  wall circuit peak {:.2} A (limit {:.0} A); {:.0} s over a rating (wall B16 or strip B10) in {} episodes, at most {:.2} A over",
            self.peak_circuit_a,
            self.circuit_limit_a,
            self.seconds_over,
            self.over_episodes,
            self.max_over_a
        )?;
        let trips: Vec<String> = self
            .trips
            .iter()
            .map(|(t, b)| format!("{b} at {t}"))
            .collect();
        writeln!(
            f,
            "  breaker trips: {}",
            if trips.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", trips.len(), trips.join(", "))
            }
        )?;
        writeln!(
            f,
            "  laptops: {} arrived, {} charged above their arrival level; {:.2} kWh from the wall; {} relay switchings by the balancer",
            self.arrived, self.batteries_rose, self.energy_kwh, self.relay_switches
        )?;
        writeln!(
            f,
            "  left at ≥ target: {}/{}; lowest battery while seated {}",
            self.left_at_target,
            self.left,
            self.lowest_battery_pct
                .map_or("n/a".to_string(), |p| format!("{p:.0} %"))
        )?;
        let top: Vec<String> = self
            .user_kwh
            .iter()
            .take(5)
            .map(|(u, k)| format!("{u} {k:.3}"))
            .collect();
        writeln!(
            f,
            "  billed today (usage entities, kWh): {}",
            if top.is_empty() {
                "none yet".to_string()
            } else {
                top.join(", ")
            }
        )?;
        write!(
            f,
            "  0 trips and 0 s over every rating: {}",
            if self.held() { "held" } else { "NOT HELD" }
        )
    }
}
