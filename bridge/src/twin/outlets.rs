//! Metered outlets behind breakers, the part the strip twins share (the
//! Tasmota strip, [`tasmota_strip_sim`](super::tasmota_strip_sim), and the
//! Shelly Pro 4PM, [`shelly_pro4pm_sim`](super::shelly_pro4pm_sim)).
//!
//! A device has relays, a resistive load per outlet, an energy counter per
//! outlet and, optionally, a [`Supply`]: its own breaker and/or a parent
//! circuit in a [`SharedCircuits`] tree. Each outlet's demand on the tree is
//! its load over the voltage while its relay is on (and the device feeds
//! it); while a breaker above it is open it reads 0 W / 0 A and counts no
//! energy, its relay unchanged, until the breaker is reset (through the
//! device or directly on the circuit).
//!
//! Energy integrates over the time the tree says each outlet was live
//! ([`SharedCircuits::live_s`]), so a trip and a reset between two
//! readings count exactly the fed time. Loads and relays only change
//! through [`MeteredOutlets`], which integrates first, so they are constant
//! between two integrations.

use super::breaker::BreakerSpec;
use super::circuit::{
    CircuitError, CircuitSlot, CircuitTree, NodeId, OutletId, SharedCircuits, TripEvent,
};

/// A device's place in a circuit tree.
#[derive(Debug)]
pub(crate) struct Supply {
    circuits: SharedCircuits,
    /// The device's own breaker, if it has one.
    breaker: Option<NodeId>,
    /// One per outlet, in the device's order.
    outlets: Vec<OutletId>,
}

impl Supply {
    /// Registers the device's breaker (named `name`) and its outlets
    /// (`outlet_names`, in order); `None` when it has neither a breaker nor
    /// a circuit.
    pub(crate) fn attach(
        name: &str,
        outlet_names: &[String],
        breaker: Option<BreakerSpec>,
        circuit: Option<&CircuitSlot>,
    ) -> Result<Option<Supply>, CircuitError> {
        let (circuits, parent) = match (circuit, breaker) {
            (None, None) => return Ok(None),
            (Some(slot), _) => (slot.circuits.clone(), Some(slot.parent)),
            (None, Some(_)) => (SharedCircuits::new(CircuitTree::new()), None),
        };
        circuits.with(|tree| {
            let breaker = match breaker {
                Some(spec) => Some(tree.add_circuit(name, parent, spec)?),
                None => None,
            };
            let node = breaker
                .or(parent)
                .ok_or_else(|| CircuitError::UnknownNode { name: name.into() })?;
            let outlets = outlet_names
                .iter()
                .map(|n| tree.add_outlet(n, node))
                .collect::<Result<_, _>>()?;
            Ok(Some(Supply {
                circuits: circuits.clone(),
                breaker,
                outlets,
            }))
        })
    }
}

/// Relays, loads and energy of a device's outlets (0-based here; each
/// device numbers them its own way outside).
#[derive(Debug)]
pub(crate) struct MeteredOutlets {
    pub(crate) relays: Vec<bool>,
    pub(crate) loads_w: Vec<f64>,
    /// Whether the device feeds each outlet (a cut outside any breaker
    /// model, such as the Pro 4PM's `set_supply`); `true` by default.
    pub(crate) fed: Vec<bool>,
    /// Wh per outlet since the device started.
    energy_wh: Vec<f64>,
    /// Sim ms of the last energy integration.
    integrated_ms: i64,
    /// Each outlet's live time in the tree at the last integration.
    live_marks: Vec<f64>,
    voltage_v: f64,
    supply: Option<Supply>,
}

impl MeteredOutlets {
    /// Relays off, nothing counted yet, at `now_ms`.
    pub(crate) fn new(
        loads_w: Vec<f64>,
        voltage_v: f64,
        supply: Option<Supply>,
        now_ms: i64,
    ) -> Self {
        let n = loads_w.len();
        let live_marks = match &supply {
            Some(s) => s
                .outlets
                .iter()
                .map(|o| s.circuits.with(|t| t.live_s(*o)))
                .collect(),
            None => vec![0.0; n],
        };
        MeteredOutlets {
            relays: vec![false; n],
            loads_w,
            fed: vec![true; n],
            energy_wh: vec![0.0; n],
            integrated_ms: now_ms,
            live_marks,
            voltage_v,
            supply,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.relays.len()
    }

    /// Whether outlet `i` would draw its load if no breaker cut it.
    fn on(&self, i: usize) -> bool {
        self.relays[i] && self.fed[i]
    }

    /// Energy counted up to `now_ms` at the present loads, each outlet over
    /// the time it was live (every breaker above it closed).
    pub(crate) fn integrate(&mut self, now_ms: i64) {
        // A caller that read the clock before another took the lock (or a
        // clock set back) has nothing left to count.
        if now_ms <= self.integrated_ms {
            return;
        }
        let wall_h = (now_ms - self.integrated_ms) as f64 / 3_600_000.0;
        for i in 0..self.len() {
            let hours = match &self.supply {
                Some(s) => {
                    // The mark moves even while the relay is off, so only
                    // time from now on counts when it closes.
                    let live = s.circuits.live_s(s.outlets[i], now_ms);
                    let fed_s = (live - self.live_marks[i]).max(0.0);
                    self.live_marks[i] = live;
                    fed_s / 3600.0
                }
                None => wall_h,
            };
            if self.on(i) {
                self.energy_wh[i] += self.loads_w[i] * hours;
            }
        }
        self.integrated_ms = now_ms;
    }

    /// Wh outlet `i` has delivered up to the last integration.
    pub(crate) fn energy_wh(&self, i: usize) -> Option<f64> {
        self.energy_wh.get(i).copied()
    }

    /// Since when a breaker has cut outlet `i`, advancing the circuits to
    /// `now_ms`; `None`: live (or no breakers at all).
    pub(crate) fn cut_since_ms(&self, i: usize, now_ms: i64) -> Option<i64> {
        let s = self.supply.as_ref()?;
        s.circuits.cut_since_ms(*s.outlets.get(i)?, now_ms)
    }

    /// Whether a breaker (the device's or a circuit's above it) cuts
    /// outlet `i` at `now_ms`.
    pub(crate) fn cut(&self, i: usize, now_ms: i64) -> bool {
        self.cut_since_ms(i, now_ms).is_some()
    }

    /// W outlet `i` draws at `now_ms` (0 for an unknown outlet).
    pub(crate) fn power_w(&self, i: usize, now_ms: i64) -> f64 {
        if i < self.len() && self.on(i) && !self.cut(i, now_ms) {
            self.loads_w[i]
        } else {
            0.0
        }
    }

    /// A outlet `i` draws at `now_ms`.
    pub(crate) fn current_a(&self, i: usize, now_ms: i64) -> f64 {
        self.power_w(i, now_ms) / self.voltage_v
    }

    /// Tells the circuits what each outlet draws from `now_ms` on; call
    /// after `integrate(now_ms)` and the change.
    pub(crate) fn push_demands(&self, now_ms: i64) {
        let Some(s) = &self.supply else { return };
        for (i, outlet) in s.outlets.iter().enumerate() {
            let amps = if self.on(i) {
                self.loads_w[i] / self.voltage_v
            } else {
                0.0
            };
            s.circuits.set_demand(*outlet, amps, now_ms);
        }
    }

    /// Applies `change` at `now_ms`: integrates first, tells the circuits
    /// after. Every change to relays, loads or feeds goes through here.
    pub(crate) fn change<R>(&mut self, now_ms: i64, change: impl FnOnce(&mut Self) -> R) -> R {
        self.integrate(now_ms);
        let r = change(self);
        self.push_demands(now_ms);
        r
    }

    /// The trips of the device's own breaker so far, with their sim ms.
    pub(crate) fn breaker_trips(&self, now_ms: i64) -> Vec<(i64, TripEvent)> {
        let Some(Supply {
            circuits,
            breaker: Some(node),
            ..
        }) = &self.supply
        else {
            return Vec::new();
        };
        let mut trips = circuits.trips(now_ms);
        trips.retain(|(_, e)| e.node == *node);
        trips
    }

    /// Closes the device's own breaker at `now_ms` (no-op without one). A
    /// circuit above is reset through its [`SharedCircuits`].
    pub(crate) fn reset_breaker(&mut self, now_ms: i64) {
        self.integrate(now_ms);
        if let Some(Supply {
            circuits,
            breaker: Some(node),
            ..
        }) = &self.supply
        {
            circuits.reset(*node, now_ms);
        }
    }
}
