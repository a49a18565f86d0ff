//! Limits first: the committed load of every node and the rules that keep
//! it within the node's rating.
//!
//! The committed load of a node is the sum, over the outlets below it that
//! count as on, of their committed draw ([`crate::meter`]): the measured
//! current; at least its expected draw (its laptop's learned draw, else
//! `assumed_current_a`) while an outlet just switched on is not yet metered; its strip's full rating while its meter is stale.
//! An outlet counts as on when it is on, commanded on, or its switch state
//! is unknown (an unreachable relay may be closed).

use super::Tree;

/// Tolerance of comparisons, A (float sums).
const EPS_A: f64 = 1e-9;

/// Share of a node's rating kept free when admitting new load: meters are
/// accurate to about 1 % (IEC 62053-21 class 1; Shelly and calibrated
/// Tasmota plugs) and report to 1 mA, so a node filled to its rating from
/// readings can be a few mA over it in reality and flap. Shedding still
/// acts at the rating itself.
pub const ADMISSION_MARGIN: f64 = 0.01;

/// Committed load per node, A.
#[derive(Debug, Clone)]
pub struct Loads {
    pub node_a: Vec<f64>,
}

impl Loads {
    /// `draw_a[i]`: outlet i's committed draw if on; `on[i]`: whether it counts.
    pub fn new(tree: &Tree, draw_a: &[f64], on: &[bool]) -> Loads {
        let mut node_a = vec![0.0; tree.nodes.len()];
        for (i, path) in tree.paths.iter().enumerate() {
            if on[i] {
                for &n in path {
                    node_a[n] += draw_a[i];
                }
            }
        }
        Loads { node_a }
    }

    /// Whether adding `extra_a` on `outlet` keeps every node above it
    /// within its rating less [`ADMISSION_MARGIN`].
    pub fn fits(&self, tree: &Tree, outlet: usize, extra_a: f64) -> bool {
        tree.paths[outlet]
            .iter()
            .all(|&n| self.node_a[n] + extra_a <= admission_limit(tree, n) + EPS_A)
    }

    pub fn add(&mut self, tree: &Tree, outlet: usize, a: f64) {
        for &n in &tree.paths[outlet] {
            self.node_a[n] += a;
        }
    }

    /// Rating minus committed load, A (negative when over).
    pub fn headroom(&self, tree: &Tree, node: usize) -> f64 {
        tree.nodes[node].limit_a - self.node_a[node]
    }

    pub fn over(&self, tree: &Tree, node: usize) -> bool {
        self.node_a[node] > tree.nodes[node].limit_a + EPS_A
    }
}

/// What new load may fill `node` up to, A: its rating less [`ADMISSION_MARGIN`].
pub fn admission_limit(tree: &Tree, node: usize) -> f64 {
    tree.nodes[node].limit_a * (1.0 - ADMISSION_MARGIN)
}

/// Switches off outlets until no node is over its rating: for each node
/// over (deepest first), the switchable outlets below it that are on and
/// draw something, in `order` (first shed first). Returns the outlets shed.
/// When the loads that cannot be switched exceed a rating alone, every
/// switchable outlet under that node ends off (nothing else can help).
pub fn shed(
    tree: &Tree,
    draw_a: &[f64],
    on: &mut [bool],
    switchable: &[bool],
    order: &[usize],
) -> Vec<usize> {
    let mut loads = Loads::new(tree, draw_a, on);
    let mut shed = Vec::new();
    for &node in &tree.deepest_first {
        if !loads.over(tree, node) {
            continue;
        }
        // Outlets that draw first (shedding one that draws nothing frees
        // nothing); then, if the node is still over (its fixed loads alone
        // exceed it), every other switchable one below it.
        for drawing_only in [true, false] {
            for &i in order {
                if !loads.over(tree, node) {
                    break;
                }
                let candidate = on[i] && switchable[i] && tree.is_under(i, node);
                if candidate && (!drawing_only || draw_a[i] > EPS_A) {
                    on[i] = false;
                    loads.add(tree, i, -draw_a[i]);
                    shed.push(i);
                }
            }
        }
    }
    shed
}
