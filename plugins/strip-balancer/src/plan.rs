//! What a strategy sees at a tick ([`Ctx`]) and what it decides: each
//! outlet on or off, and why ([`Why`], published as the `why` attribute).

use crate::config::Config;
use crate::meter::OutletView;
use crate::tree::Tree;
use crate::tree::limits::Loads;

/// Why an outlet is as it is (the `why` attribute of its `allowed` entity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// On: charging (or may charge).
    Charging,
    /// Off: switching it on would exceed a limit, or it was shed for one.
    Limit,
    /// Off: its laptop reached its target (and has not fallen below
    /// target − `resume_margin_pct` since).
    TargetReached,
    /// Off: an empty seat (`user_entity` names nobody) drawing ≈ 0 A when on.
    NothingPlugged,
    /// On, needing no charge (at target, or nothing plugged): kept on
    /// while no one who wants charge waits for the room.
    NoOneWaiting,
    /// Off: its user's `over_limit` sensor is on.
    OverLimit,
    /// Off: outside opening hours.
    Closed,
    /// Off: switched off less than `min_off_s` ago.
    MinOff,
    /// On: switched on less than `min_on_s` ago (would yield otherwise).
    MinOn,
    /// Off: yielded its slot to a laptop that waited longer or is emptier.
    Rotation,
    /// Off: its meter is stale (counts as full load).
    MeterStale,
    /// Off: the most outlets at once are charging (`max_parallel`).
    Parallel,
    /// On: must charge now to reach its target by its user's departure.
    DepartureSoon,
    /// On at its target: switched off, it would drain below it before
    /// its user leaves.
    HoldingForDeparture,
    /// Never switched (`always_on`).
    AlwaysOn,
    /// Round-robin: not its slot.
    NotItsSlot,
    /// Its switch is unreachable (counts as on).
    Unreachable,
    /// All-on: no balancing.
    NoBalancing,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Charging => "charging",
            Why::Limit => "limit",
            Why::TargetReached => "target reached",
            Why::NothingPlugged => "nothing plugged",
            Why::NoOneWaiting => "no one waiting",
            Why::OverLimit => "over limit",
            Why::Closed => "closed",
            Why::MinOff => "min_off",
            Why::MinOn => "min_on",
            Why::Rotation => "rotation",
            Why::MeterStale => "meter stale",
            Why::Parallel => "max parallel",
            Why::DepartureSoon => "departure soon",
            Why::HoldingForDeparture => "holding for departure",
            Why::AlwaysOn => "always on",
            Why::NotItsSlot => "not its slot",
            Why::Unreachable => "switch unreachable",
            Why::NoBalancing => "no balancing",
        }
    }
}

/// What the shell remembers of an outlet between ticks.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Last command sent, and when (ms).
    pub commanded: Option<(bool, i64)>,
    /// Last on/off transition (commanded or seen), ms.
    pub last_switch_ms: Option<i64>,
    /// When it was last switched on by us (settling of its meter), ms.
    pub on_since_ms: Option<i64>,
    /// Since when it has waited for charge while off, ms (rotation's aging).
    pub waiting_since_ms: Option<i64>,
    /// Target latch: the target in force when its laptop reached it, %;
    /// None once below target − `resume_margin_pct` ([`crate::need`]).
    pub satisfied_at_pct: Option<f64>,
    /// An empty seat seen on, settled, drawing ≈ 0 A ([`crate::need`]).
    pub nothing_plugged: bool,
    /// The highest settled draw of the laptop now on the outlet, A
    /// ([`crate::need`]): what switching it on again commits, instead of
    /// `assumed_current_a`. Forgotten when the laptop may have changed.
    pub learned_draw_a: Option<f64>,
    /// The battery level at the last tick, % (None: no reading).
    pub last_battery_pct: Option<f64>,
    /// The holder at the last tick (`users` index); outer None: not read yet.
    pub holder: Option<Option<usize>>,
    /// Rate learning ([`crate::departure::learn_rates`]): the reading
    /// (ms, %, on) a rate is measured from, and the last reading, %.
    pub rate_anchor: Option<(i64, f64, bool)>,
    pub rate_last_pct: Option<f64>,
    /// Learned charge rate while on and drain rate while off, % per min.
    pub charge_pct_per_min: Option<f64>,
    pub drain_pct_per_min: Option<f64>,
}

/// One tick's facts, for a strategy.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub tree: &'a Tree,
    pub now_ms: i64,
    pub views: &'a [OutletView],
    /// Per outlet: committed draw if on, A (for an off outlet: as if switched on now).
    pub draw_a: &'a [f64],
    /// Per outlet: the strategy may switch it (not `always_on`, switch reachable).
    pub switchable: &'a [bool],
    /// Per outlet: battery target in force, %.
    pub target_pct: &'a [f64],
    pub max_parallel: Option<u32>,
    pub memory: &'a [Memory],
    /// Per outlet: may be drawing now, whatever was decided: its switch
    /// reports on (or is unknown), or a `turn_on` is pending. A `turn_off`
    /// is believed only once the switch reports off.
    pub live: &'a [bool],
}

impl Ctx<'_> {
    /// Committed load for admitting new load: outlets decided on, plus
    /// those decided off whose switch has not reported off yet (a lost or
    /// slow `turn_off` must not make room).
    pub fn admission_loads(&self, on: &[bool]) -> Loads {
        let counted: Vec<bool> = on.iter().zip(self.live).map(|(&o, &l)| o || l).collect();
        Loads::new(self.tree, self.draw_a, &counted)
    }
    /// Time since the outlet's last transition, s (∞ when never switched).
    pub fn since_switch_s(&self, i: usize) -> f64 {
        self.memory[i]
            .last_switch_ms
            .map_or(f64::INFINITY, |t| (self.now_ms - t) as f64 / 1000.0)
    }
    pub fn min_on_held(&self, i: usize) -> bool {
        self.since_switch_s(i) < self.cfg.min_on_s
    }
    pub fn min_off_held(&self, i: usize) -> bool {
        self.since_switch_s(i) < self.cfg.min_off_s
    }
}

/// A controller strategy over the shared shell (readings, opening hours,
/// commands, entities). `on` starts as the outlets' present state; a
/// strategy changes only `switchable` outlets.
pub trait Strategy {
    const NAME: &'static str;
    fn new(cfg: &Config) -> Self;
    fn plan(&mut self, ctx: &Ctx, on: &mut [bool], why: &mut [Why]);
}
