//! What `hearth demo --scenario plugs` prints at the end.

/// One plug's energy: what Home Assistant sees against the twin.
#[derive(Debug, Clone, PartialEq)]
pub struct PlugEnergy {
    /// `desk (Shelly Plug S, Gen1, MQTT push)`.
    pub label: String,
    /// The bridge's energy sensor.
    pub entity: String,
    /// Its state, Wh (`None`: no reading yet).
    pub bridge_wh: Option<f64>,
    /// The twin's energy when that state was last updated, Wh.
    pub truth_at_reading_wh: f64,
    /// The twin's energy at the end, Wh.
    pub truth_now_wh: f64,
}

impl PlugEnergy {
    /// Bridge − twin at the reading's time, Wh.
    pub fn error_wh(&self) -> Option<f64> {
        self.bridge_wh.map(|b| b - self.truth_at_reading_wh)
    }

    /// Within `abs_wh` + `rel` × the twin's value.
    pub fn within(&self, abs_wh: f64, rel: f64) -> bool {
        self.error_wh()
            .is_some_and(|e| e.abs() <= abs_wh + rel * self.truth_at_reading_wh.abs())
    }
}

/// Push latency of one plug: twin change → bridge's store, wall seconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PushLatency {
    pub label: String,
    /// Changes seen, and their latencies, sorted.
    pub latencies_s: Vec<f64>,
    /// Changes never seen with the expected value before the next change
    /// (or the end of the run).
    pub missed: usize,
}

impl PushLatency {
    pub fn p50_s(&self) -> Option<f64> {
        percentile(&self.latencies_s, 0.5)
    }

    pub fn max_s(&self) -> Option<f64> {
        self.latencies_s.last().copied()
    }
}

/// Nearest-rank percentile of sorted `xs`.
pub fn percentile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1])
}

/// The IR commands the gateway received, read from its log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IrTally {
    /// Frames received.
    pub frames: usize,
    /// Commands (a frame that is not a re-send).
    pub commands: usize,
    /// Frames repeating the previous one within its confirmation window.
    pub resent: usize,
    /// Frames the AC ignored (the twin's `ignore_next` fault).
    pub ignored: usize,
    /// Commands whose power state the bridge's plug sensor then showed.
    pub confirmed: usize,
    /// Commands that needed a re-send and were then confirmed.
    pub resent_then_confirmed: usize,
}

/// What the demo measured.
#[derive(Debug, Clone, Default)]
pub struct PlugsReport {
    pub simulated_h: f64,
    /// Local time of the start and the end, `HH:MM`.
    pub from: String,
    pub to: String,
    pub plugs: Vec<PlugEnergy>,
    pub push: Vec<PushLatency>,
    pub ir: IrTally,
    /// Service calls the demo made through the router, and how many failed.
    pub calls: usize,
    pub failed_calls: Vec<String>,
    /// (entity, state) of every problem entity (device class `problem`).
    pub problems: Vec<(String, String)>,
    /// Pending devices (id and model) as `<base>/bridge/devices/pending` lists them.
    pub pending: Vec<String>,
    /// Office temperature range, °C.
    pub room_range_c: (f64, f64),
}

impl PlugsReport {
    /// Problem entities that are on.
    pub fn problems_on(&self) -> Vec<&str> {
        self.problems
            .iter()
            .filter(|(_, s)| s == "on")
            .map(|(e, _)| e.as_str())
            .collect()
    }
}

fn opt(v: Option<f64>, unit: &str, decimals: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.decimals$} {unit}"))
}

impl std::fmt::Display for PlugsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Plugs demo summary ({:.1} simulated hours, {}–{}; office {:.1}–{:.1} °C):",
            self.simulated_h, self.from, self.to, self.room_range_c.0, self.room_range_c.1
        )?;
        writeln!(
            f,
            "  energy, Home Assistant's sensor vs the twin when it was last updated:"
        )?;
        for p in &self.plugs {
            writeln!(
                f,
                "    {:<44} {:>10} vs {:>9.1} Wh (Δ {}; twin now {:.1} Wh)",
                p.label,
                opt(p.bridge_wh, "Wh", 1),
                p.truth_at_reading_wh,
                opt(p.error_wh(), "Wh", 2),
                p.truth_now_wh
            )?;
        }
        writeln!(f, "  push latency, twin change → bridge's store (wall):")?;
        for l in &self.push {
            writeln!(
                f,
                "    {:<44} p50 {}, max {} over {} changes{}",
                l.label,
                opt(l.p50_s().map(|s| s * 1000.0), "ms", 1),
                opt(l.max_s().map(|s| s * 1000.0), "ms", 1),
                l.latencies_s.len(),
                if l.missed > 0 {
                    format!(" ({} not seen)", l.missed)
                } else {
                    String::new()
                }
            )?;
        }
        let ir = &self.ir;
        writeln!(
            f,
            "  IR (Broadlink RM4): {} frames, {} commands, {} re-sent, {} ignored by the AC, {} confirmed on the plug ({} after a re-send)",
            ir.frames, ir.commands, ir.resent, ir.ignored, ir.confirmed, ir.resent_then_confirmed
        )?;
        writeln!(
            f,
            "  service calls as HA would make them: {}{}",
            self.calls,
            if self.failed_calls.is_empty() {
                ", all done".to_string()
            } else {
                format!(", failed: {}", self.failed_calls.join("; "))
            }
        )?;
        let on = self.problems_on();
        writeln!(
            f,
            "  problem entities: {} on of {}{}",
            on.len(),
            self.problems.len(),
            if on.is_empty() {
                String::new()
            } else {
                format!(" ({})", on.join(", "))
            }
        )?;
        write!(
            f,
            "  devices pending adoption: {}",
            if self.pending.is_empty() {
                "none".to_string()
            } else {
                self.pending.join(", ")
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let xs = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(percentile(&xs, 0.5), Some(0.2));
        assert_eq!(percentile(&xs, 1.0), Some(0.4));
        assert_eq!(percentile(&[], 0.5), None);
        let p = PlugEnergy {
            label: "x".into(),
            entity: "sensor.x".into(),
            bridge_wh: Some(101.0),
            truth_at_reading_wh: 100.0,
            truth_now_wh: 100.0,
        };
        assert!(p.within(0.5, 0.01));
        assert!(!p.within(0.5, 0.001));
    }
}
