//! The twin's wiring: a tree of [`Breaker`]s (a root circuit, circuits
//! under it, strips under circuits) with outlets hanging from them, as in
//! a distribution board feeding power strips.
//!
//! Each outlet has a *demand*: the current its load would draw if live.
//! The current through a breaker is the sum of the demands of the live
//! outlets below it; an outlet is live when every breaker between it and
//! the root is closed. A tripped breaker cuts every outlet below it (they
//! draw 0 A, their relays keep their state) until it is reset.
//!
//! [`CircuitTree`] is pure and deterministic: it moves only in
//! [`CircuitTree::step`], which splits a step at each trip moment (breakers
//! are solved exactly, see [`breaker`](super::breaker)), so a strip
//! breaker tripping first unloads its parent for the rest of the step
//! whatever the step size.
//!
//! Simulated devices share one tree through [`SharedCircuits`], in their
//! clock's milliseconds: a device calls [`SharedCircuits::set_demand`]
//! whenever a relay or a load changes, and [`SharedCircuits::cut_since_ms`]
//! before it meters or reports. Loads are constant between those calls,
//! so advancing lazily is exact. Lock order: a device's own state first,
//! then the circuits (the circuits never call back into a device).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::breaker::{Breaker, BreakerSpec, Trip, TripReason};

/// A breaker's place in a [`CircuitTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

/// An outlet's place in a [`CircuitTree`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutletId(usize);

/// A tree that cannot be built as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CircuitError {
    /// A circuit or outlet named twice (names identify them in logs).
    DuplicateName(String),
    /// A parent that is not in this tree.
    UnknownNode { name: String },
}

impl fmt::Display for CircuitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CircuitError::DuplicateName(n) => {
                write!(
                    f,
                    "circuit tree: `{n}` is already in the tree; names must be unique"
                )
            }
            CircuitError::UnknownNode { name } => write!(
                f,
                "circuit tree: `{name}` hangs from a circuit that is not in this tree"
            ),
        }
    }
}

impl std::error::Error for CircuitError {}

/// A breaker opening, in tree time.
#[derive(Debug, Clone, PartialEq)]
pub struct TripEvent {
    pub node: NodeId,
    /// The circuit's name.
    pub name: String,
    pub reason: TripReason,
    /// s since the tree was made.
    pub at_s: f64,
    /// A through the breaker when it opened.
    pub current_a: f64,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    parent: Option<NodeId>,
    breaker: Breaker,
}

#[derive(Debug, Clone)]
struct Outlet {
    name: String,
    node: NodeId,
    /// A the load would draw if live.
    demand_a: f64,
    /// s (tree time) since when a breaker above cuts it.
    cut_since_s: Option<f64>,
    /// s (tree time) it has been live since it was added: what a device
    /// integrates its energy over, so a cut between two of its readings
    /// (however it ended: a reset through the device or directly on a
    /// circuit above) counts nothing.
    live_s: f64,
}

/// Breakers and outlets; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct CircuitTree {
    nodes: Vec<Node>,
    outlets: Vec<Outlet>,
    names: HashMap<String, ()>,
    elapsed_s: f64,
    trips: Vec<TripEvent>,
}

impl CircuitTree {
    pub fn new() -> Self {
        Self::default()
    }

    fn claim(&mut self, name: &str) -> Result<(), CircuitError> {
        if self.names.insert(name.to_string(), ()).is_some() {
            return Err(CircuitError::DuplicateName(name.to_string()));
        }
        Ok(())
    }

    /// Adds a breaker `name` below `parent` (`None`: a root). Parents exist
    /// before their children, so a tree cannot hold a loop.
    pub fn add_circuit(
        &mut self,
        name: &str,
        parent: Option<NodeId>,
        spec: BreakerSpec,
    ) -> Result<NodeId, CircuitError> {
        if parent.is_some_and(|p| p.0 >= self.nodes.len()) {
            return Err(CircuitError::UnknownNode { name: name.into() });
        }
        self.claim(name)?;
        self.nodes.push(Node {
            name: name.into(),
            parent,
            breaker: Breaker::new(spec),
        });
        Ok(NodeId(self.nodes.len() - 1))
    }

    /// Adds an outlet `name` below breaker `node`, with no demand.
    pub fn add_outlet(&mut self, name: &str, node: NodeId) -> Result<OutletId, CircuitError> {
        if node.0 >= self.nodes.len() {
            return Err(CircuitError::UnknownNode { name: name.into() });
        }
        self.claim(name)?;
        self.outlets.push(Outlet {
            name: name.into(),
            node,
            demand_a: 0.0,
            cut_since_s: self.cut_by(node).then_some(self.elapsed_s),
            live_s: 0.0,
        });
        Ok(OutletId(self.outlets.len() - 1))
    }

    pub fn node(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name).map(NodeId)
    }

    pub fn outlet(&self, name: &str) -> Option<OutletId> {
        self.outlets
            .iter()
            .position(|o| o.name == name)
            .map(OutletId)
    }

    /// Sets what `outlet`'s load draws when live (A, RMS; sign ignored, a
    /// NaN leaves it unchanged). Takes effect from the next step.
    pub fn set_demand(&mut self, outlet: OutletId, amps: f64) {
        if let Some(o) = self.outlets.get_mut(outlet.0)
            && !amps.is_nan()
        {
            o.demand_a = amps.abs();
        }
    }

    /// The breaker at `node`, if any.
    pub fn breaker(&self, node: NodeId) -> Option<&Breaker> {
        self.nodes.get(node.0).map(|n| &n.breaker)
    }

    /// Whether the breaker at `node` is open.
    pub fn tripped(&self, node: NodeId) -> bool {
        self.breaker(node).is_some_and(Breaker::tripped)
    }

    /// Whether a breaker between `outlet` and the root is open.
    pub fn is_cut(&self, outlet: OutletId) -> bool {
        self.outlets
            .get(outlet.0)
            .is_some_and(|o| o.cut_since_s.is_some())
    }

    /// s (tree time) since when `outlet` has been cut, `None` if live.
    pub fn cut_since_s(&self, outlet: OutletId) -> Option<f64> {
        self.outlets.get(outlet.0).and_then(|o| o.cut_since_s)
    }

    /// s (tree time) `outlet` has been live since it was added (0 for an
    /// unknown outlet). Its difference between two moments is the time the
    /// outlet was fed between them, whatever tripped or was reset between.
    pub fn live_s(&self, outlet: OutletId) -> f64 {
        self.outlets.get(outlet.0).map_or(0.0, |o| o.live_s)
    }

    /// Adds `dt_s` to the live time of every outlet that is live now.
    fn count_live(&mut self, dt_s: f64) {
        for o in self.outlets.iter_mut().filter(|o| o.cut_since_s.is_none()) {
            o.live_s += dt_s;
        }
    }

    /// A `outlet` draws now: its demand if live, else 0.
    pub fn outlet_current_a(&self, outlet: OutletId) -> f64 {
        match self.outlets.get(outlet.0) {
            Some(o) if o.cut_since_s.is_none() => o.demand_a,
            _ => 0.0,
        }
    }

    /// A through the breaker at `node` now.
    pub fn current_a(&self, node: NodeId) -> f64 {
        self.node_currents().get(node.0).copied().unwrap_or(0.0)
    }

    /// s since the tree was made.
    pub fn elapsed_s(&self) -> f64 {
        self.elapsed_s
    }

    /// Every trip so far, oldest first.
    pub fn trips(&self) -> &[TripEvent] {
        &self.trips
    }

    /// Closes the breaker at `node`; the outlets below it are live again
    /// unless another open breaker above them still cuts them.
    pub fn reset(&mut self, node: NodeId) {
        if let Some(n) = self.nodes.get_mut(node.0) {
            n.breaker.reset();
        }
        self.update_cuts();
    }

    /// Whether `node` or a breaker above it is open.
    fn cut_by(&self, node: NodeId) -> bool {
        let mut at = Some(node);
        while let Some(n) = at {
            let node = &self.nodes[n.0];
            if node.breaker.tripped() {
                return true;
            }
            at = node.parent;
        }
        false
    }

    fn update_cuts(&mut self) {
        for i in 0..self.outlets.len() {
            let cut = self.cut_by(self.outlets[i].node);
            let o = &mut self.outlets[i];
            o.cut_since_s = match (cut, o.cut_since_s) {
                (true, None) => Some(self.elapsed_s),
                (true, since) => since,
                (false, _) => None,
            };
        }
    }

    /// A through each breaker: the live outlets' demands summed upwards.
    fn node_currents(&self) -> Vec<f64> {
        let mut amps = vec![0.0; self.nodes.len()];
        for o in self.outlets.iter().filter(|o| o.cut_since_s.is_none()) {
            let mut at = Some(o.node);
            while let Some(n) = at {
                amps[n.0] += o.demand_a;
                at = self.nodes[n.0].parent;
            }
        }
        amps
    }

    /// Carries the present demands for `dt_s` seconds (non-finite or
    /// negative: nothing happens) and returns the breakers that opened,
    /// in order. The step is cut at each trip so the currents above a
    /// tripped breaker drop at the moment it opens.
    pub fn step(&mut self, dt_s: f64) -> Vec<TripEvent> {
        let mut events = Vec::new();
        if !dt_s.is_finite() || dt_s < 0.0 {
            return events;
        }
        let mut left = dt_s;
        // Each pass but the last opens at least one breaker; the bound only
        // guards against a float surprise.
        for _ in 0..=self.nodes.len() + 1 {
            let amps = self.node_currents();
            let next = self
                .nodes
                .iter()
                .zip(&amps)
                .filter_map(|(n, a)| n.breaker.time_to_trip(*a))
                .min_by(f64::total_cmp);
            let tripping = matches!(next, Some(t) if t <= left);
            let seg = if tripping { next.unwrap_or(left) } else { left };
            let start = self.elapsed_s;
            for (i, node) in self.nodes.iter_mut().enumerate() {
                if let Some(Trip {
                    reason, current_a, ..
                }) = node.breaker.step(amps[i], seg)
                {
                    events.push(TripEvent {
                        node: NodeId(i),
                        name: node.name.clone(),
                        reason,
                        at_s: start + seg,
                        current_a,
                    });
                }
            }
            self.elapsed_s = start + seg;
            left -= seg;
            // Live through the whole segment: a cut takes effect at its end.
            self.count_live(seg);
            self.update_cuts();
            if !tripping {
                break;
            }
        }
        if left > 0.0 {
            // Only after the guard above ran out: finish the step plainly.
            let amps = self.node_currents();
            for (i, node) in self.nodes.iter_mut().enumerate() {
                node.breaker.step(amps[i], left);
            }
            self.elapsed_s += left;
            self.count_live(left);
        }
        self.trips.extend(events.iter().cloned());
        events
    }
}

/// A [`CircuitTree`] shared by simulated devices, in their clock's time
/// (ms since the Unix epoch). Cheap to clone. Tree time 0 is the first
/// time any device reads or writes it.
#[derive(Debug, Clone, Default)]
pub struct SharedCircuits {
    inner: Arc<Mutex<Timed>>,
}

#[derive(Debug, Default)]
struct Timed {
    tree: CircuitTree,
    /// ms at tree time 0, set on the first sync.
    origin_ms: Option<i64>,
}

impl Timed {
    /// Steps the tree to `now_ms`, logging each trip; an earlier `now_ms`
    /// (two devices reading the clock in a race) changes nothing.
    fn sync(&mut self, now_ms: i64) {
        let origin = *self.origin_ms.get_or_insert(now_ms);
        let dt_s = (now_ms - origin) as f64 / 1000.0 - self.tree.elapsed_s();
        if dt_s > 0.0 {
            for e in self.tree.step(dt_s) {
                tracing::warn!(
                    "twin breaker `{}` tripped ({:?}) at {:.1} A, t = {:.1} s; its outlets are cut until reset",
                    e.name,
                    e.reason,
                    e.current_a,
                    e.at_s
                );
            }
        }
    }

    fn to_ms(&self, tree_s: f64) -> i64 {
        self.origin_ms.unwrap_or(0) + (tree_s * 1000.0).round() as i64
    }
}

impl SharedCircuits {
    pub fn new(tree: CircuitTree) -> Self {
        SharedCircuits {
            inner: Arc::new(Mutex::new(Timed {
                tree,
                origin_ms: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Timed> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the tree as it stands (building it, reading it, or
    /// stepping it by hand in a test). Does not advance it.
    pub fn with<R>(&self, f: impl FnOnce(&mut CircuitTree) -> R) -> R {
        f(&mut self.lock().tree)
    }

    /// Advances to `now_ms` at the old demands, then sets `outlet`'s.
    pub fn set_demand(&self, outlet: OutletId, amps: f64, now_ms: i64) {
        let mut t = self.lock();
        t.sync(now_ms);
        t.tree.set_demand(outlet, amps);
    }

    /// Advances to `now_ms`; then ms since when `outlet` has been cut, or
    /// `None` if it is live.
    pub fn cut_since_ms(&self, outlet: OutletId, now_ms: i64) -> Option<i64> {
        let mut t = self.lock();
        t.sync(now_ms);
        let since = t.tree.cut_since_s(outlet)?;
        Some(t.to_ms(since))
    }

    /// Advances to `now_ms`; s `outlet` has been live (see
    /// [`CircuitTree::live_s`]).
    pub fn live_s(&self, outlet: OutletId, now_ms: i64) -> f64 {
        let mut t = self.lock();
        t.sync(now_ms);
        t.tree.live_s(outlet)
    }

    /// Advances to `now_ms`; whether the breaker at `node` is open.
    pub fn tripped(&self, node: NodeId, now_ms: i64) -> bool {
        let mut t = self.lock();
        t.sync(now_ms);
        t.tree.tripped(node)
    }

    /// Advances to `now_ms`, then closes the breaker at `node`.
    pub fn reset(&self, node: NodeId, now_ms: i64) {
        let mut t = self.lock();
        t.sync(now_ms);
        t.tree.reset(node);
    }

    /// Advances to `now_ms`; every trip so far, with its time in ms.
    pub fn trips(&self, now_ms: i64) -> Vec<(i64, TripEvent)> {
        let mut t = self.lock();
        t.sync(now_ms);
        t.tree
            .trips()
            .iter()
            .map(|e| (t.to_ms(e.at_s), e.clone()))
            .collect()
    }
}

/// Where a device hangs in a shared tree: the circuit its own breaker (or,
/// without one, its outlets) sits under.
#[derive(Debug, Clone)]
pub struct CircuitSlot {
    pub circuits: SharedCircuits,
    pub parent: NodeId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::breaker::TripCurve;

    const MIN: f64 = 60.0;

    /// One 16 A B circuit with one outlet, carrying `amps` for `secs`
    /// in 1 s steps; the trips seen.
    fn circuit_16a(amps: f64, secs: f64) -> (CircuitTree, OutletId, Vec<TripEvent>) {
        let mut t = CircuitTree::new();
        let c = t
            .add_circuit("circuit", None, BreakerSpec::b(16.0))
            .unwrap();
        let o = t.add_outlet("o", c).unwrap();
        t.set_demand(o, amps);
        let mut trips = Vec::new();
        for _ in 0..secs as usize {
            trips.extend(t.step(1.0));
        }
        (t, o, trips)
    }

    #[test]
    fn sixteen_amp_circuit_trips_at_20_a_not_at_17_a() {
        let (t, o, trips) = circuit_16a(20.0, 10.0 * MIN);
        assert_eq!(trips.len(), 1, "{trips:?}");
        assert_eq!(trips[0].reason, TripReason::Thermal);
        assert!(t.is_cut(o));
        assert_eq!(t.outlet_current_a(o), 0.0);
        let (t, o, trips) = circuit_16a(17.0, 10.0 * MIN);
        assert!(trips.is_empty() && !t.is_cut(o));
        assert_eq!(t.outlet_current_a(o), 17.0);
    }

    #[test]
    fn eighty_amps_trips_a_b16_instantly() {
        let mut t = CircuitTree::new();
        let c = t
            .add_circuit("circuit", None, BreakerSpec::b(16.0))
            .unwrap();
        let o = t.add_outlet("o", c).unwrap();
        t.set_demand(o, 80.0);
        let trips = t.step(0.01);
        assert_eq!(trips.len(), 1);
        assert_eq!(
            (trips[0].reason, trips[0].at_s),
            (TripReason::Magnetic, 0.0)
        );
        // A C16 rides through the same 80 A for the 0.01 s.
        let mut t = CircuitTree::new();
        let spec = BreakerSpec {
            rating_a: 16.0,
            curve: TripCurve::C,
        };
        let c = t.add_circuit("circuit", None, spec).unwrap();
        let o = t.add_outlet("o", c).unwrap();
        t.set_demand(o, 80.0);
        assert!(t.step(0.01).is_empty());
    }

    #[test]
    fn reset_restores_outlets_and_cooling_lets_them_hold() {
        let (mut t, o, _) = circuit_16a(20.0, 10.0 * MIN);
        let c = t.node("circuit").unwrap();
        // Open: the heat drains while nothing flows.
        t.step(30.0 * MIN);
        t.reset(c);
        assert!(!t.is_cut(o) && !t.tripped(c));
        assert_eq!(t.outlet_current_a(o), 20.0);
        // Cooled: the same 20 A again holds about as long as from cold
        // (458 s), not the instant it would right after the trip.
        let trips: Vec<_> = (0..400).flat_map(|_| t.step(1.0)).collect();
        assert!(trips.is_empty(), "{trips:?}");
        // Reset while the overload stays: it trips again.
        let trips: Vec<_> = (0..600).flat_map(|_| t.step(1.0)).collect();
        assert_eq!(trips.len(), 1);
        assert_eq!(t.trips().len(), 2);
    }

    /// Root B16 over circuit B10 with strips `a` and `b` (B10 each).
    fn two_strips() -> (CircuitTree, [NodeId; 3], [OutletId; 2]) {
        let mut t = CircuitTree::new();
        let root = t.add_circuit("root", None, BreakerSpec::b(16.0)).unwrap();
        let a = t
            .add_circuit("a", Some(root), BreakerSpec::b(10.0))
            .unwrap();
        let b = t
            .add_circuit("b", Some(root), BreakerSpec::b(10.0))
            .unwrap();
        let oa = t.add_outlet("a/1", a).unwrap();
        let ob = t.add_outlet("b/1", b).unwrap();
        (t, [root, a, b], [oa, ob])
    }

    #[test]
    fn a_tripped_strip_does_not_cut_its_sibling() {
        let (mut t, [root, a, b], [oa, ob]) = two_strips();
        t.set_demand(oa, 14.0); // 1.4·In of strip a: trips after 239 s
        t.set_demand(ob, 8.0); // 22 A, 1.375·In of the root: 258 s
        assert_eq!(t.current_a(root), 22.0);
        let trips = t.step(10.0 * MIN);
        assert_eq!(
            trips.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert!(t.tripped(a) && !t.tripped(b) && !t.tripped(root));
        assert!(t.is_cut(oa) && !t.is_cut(ob));
        assert_eq!(t.current_a(root), 8.0);
        // One 10-min step, yet the root's 22 A stopped when `a` opened at
        // 239 s, so the root did not trip at 258 s: the step is split.
    }

    #[test]
    fn a_tripped_parent_cuts_every_strip_below() {
        let (mut t, [root, a, b], [oa, ob]) = two_strips();
        t.set_demand(oa, 11.0);
        t.set_demand(ob, 11.0); // 22 A on the B16 root, each strip at 1.1·In
        let trips = t.step(30.0 * MIN);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].node, root);
        assert!(t.is_cut(oa) && t.is_cut(ob) && !t.tripped(a) && !t.tripped(b));
        let since = t.cut_since_s(oa).unwrap();
        assert!((since - trips[0].at_s).abs() < 1e-9);
        t.reset(a); // not the open one: still cut
        assert!(t.is_cut(oa));
        t.reset(root);
        assert!(!t.is_cut(oa) && !t.is_cut(ob));
    }

    #[test]
    fn live_time_stops_while_cut_and_resumes_on_reset() {
        let (mut t, [root, ..], [oa, ob]) = two_strips();
        t.set_demand(oa, 11.0);
        t.set_demand(ob, 11.0);
        let trips = t.step(30.0 * MIN);
        assert_eq!(trips.len(), 1);
        let at = trips[0].at_s;
        assert!((t.live_s(oa) - at).abs() < 1e-9 && (t.live_s(ob) - at).abs() < 1e-9);
        t.reset(root);
        t.set_demand(oa, 0.0);
        t.step(10.0);
        assert!((t.live_s(oa) - at - 10.0).abs() < 1e-9, "{}", t.live_s(oa));
    }

    #[test]
    fn bad_trees_are_refused_with_the_name() {
        let mut t = CircuitTree::new();
        let c = t.add_circuit("c", None, BreakerSpec::b(16.0)).unwrap();
        assert_eq!(
            t.add_outlet("c", c),
            Err(CircuitError::DuplicateName("c".into()))
        );
        let err = t
            .add_circuit("x", Some(NodeId(9)), BreakerSpec::b(16.0))
            .unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
    }

    #[test]
    fn shared_tree_advances_in_clock_time() {
        let (tree, [_, a, _], [oa, _]) = two_strips();
        let shared = SharedCircuits::new(tree);
        let t0 = 1_000_000;
        shared.set_demand(oa, 14.0, t0);
        assert_eq!(shared.cut_since_ms(oa, t0 + 60_000), None);
        let at = shared.cut_since_ms(oa, t0 + 600_000).expect("cut");
        // 1.4·In on a B10: τ·ln(1.96/0.52) = 239 s.
        assert!((at - t0 - 239_000).abs() < 1000, "{}", at - t0);
        assert!(shared.tripped(a, t0 + 600_000));
        assert_eq!(shared.trips(t0 + 600_000)[0].0, at);
        shared.reset(a, t0 + 600_000);
        assert_eq!(shared.cut_since_ms(oa, t0 + 600_000), None);
    }
}
