//! One sandboxed plugin instance. Every call runs under an epoch deadline
//! and the memory cap; a failure comes back as a named [`PluginFault`].
//! After a fault the instance must not be called again (wasmtime refuses
//! re-entry after a trap): the runner makes a fresh one from the
//! pre-linked component.
//!
//! The deadline measures the plugin's own wall time: the epoch deadline
//! only wakes a check ([`remaining_ticks`]) that takes the call's elapsed
//! time minus the host's (imports such as `history`, which may read the
//! recorder's database, and the copies of their results into the guest;
//! measured by wasmtime's call hook), credited up to [`HOST_IO_CREDIT_MAX`]
//! per call (so a plugin calling `history` in a loop is still stopped),
//! and either extends the deadline by what is left or stops the call.

use super::Limits;
use super::engine::{CallTime, Controller, ControllerPre, EPOCH_TICK, HostState, wit};
use std::time::Duration;
use wasmtime::{CallHook, Store, UpdateDeadline};

/// The most host time one call is credited with.
pub const HOST_IO_CREDIT_MAX: Duration = Duration::from_secs(5);

/// The most bytes a plugin may hand the host in one call (its `output`,
/// `description`, an error text, or the arguments of one import such as
/// `log`). wasmtime counts them as it lifts each string and list, from the
/// (pointer, length) pairs in the guest's memory and before it allocates
/// the host's copy (the store's "hostcall fuel"); more is a
/// [`PluginFault::BadOutput`] naming this cap. 64 service calls, alerts and
/// entity updates of a few KiB each fit; a megabyte string does not.
pub const OUTPUT_BYTES_MAX: usize = 256 << 10;

/// wasmtime's words when the hostcall fuel runs out (it has no public type
/// to match), checked by a test so an upgrade that rewords it is noticed.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Epoch ticks left of a call's `budget` after `elapsed` wall time, of
/// which `host_io` (capped) was the host's; `None` once it is spent.
pub fn remaining_ticks(elapsed: Duration, host_io: Duration, budget: Duration) -> Option<u64> {
    let own = elapsed.saturating_sub(host_io.min(HOST_IO_CREDIT_MAX));
    let left = budget.checked_sub(own).filter(|l| !l.is_zero())?;
    Some(left.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginFault {
    #[error("exceeded its time budget of {0} ms (wall clock) in one call")]
    Timeout(u64),
    #[error("exceeded its CPU budget of {0} fuel units in one call")]
    OutOfFuel(u64),
    #[error("ran out of memory: {0}")]
    OutOfMemory(String),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("rejected its config: {0}")]
    InitFailed(String),
    #[error("returned invalid output: {0}")]
    BadOutput(String),
}

pub struct PluginInstance {
    store: Store<HostState>,
    bindings: Controller,
    deadline_ticks: u64,
    timeout_ms: u64,
    fuel_per_call: u64,
    pub stats: CallStats,
}

/// CPU and memory use of one instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct CallStats {
    pub calls: u64,
    /// Fuel of the last call and the most any call used.
    pub fuel_last: u64,
    pub fuel_max: u64,
    pub fuel_total: u64,
    /// Linear memory, bytes (it only grows).
    pub memory_bytes: u64,
}

impl PluginInstance {
    pub fn new(
        engine: &wasmtime::Engine,
        pre: &ControllerPre<HostState>,
        state: HostState,
        limits: &Limits,
    ) -> Result<Self, PluginFault> {
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(OUTPUT_BYTES_MAX);
        let budget = Duration::from_millis(limits.call_timeout_ms);
        store.epoch_deadline_callback(move |ctx| {
            let d = ctx.data();
            Ok(
                match remaining_ticks(d.time.started.elapsed(), d.time.host_so_far(), budget) {
                    Some(ticks) => UpdateDeadline::Continue(ticks),
                    None => UpdateDeadline::Interrupt,
                },
            )
        });
        store.call_hook(|mut ctx, hook| {
            match hook {
                CallHook::CallingHost => ctx.data_mut().time.enter_host(),
                CallHook::ReturningFromHost => ctx.data_mut().time.leave_host(),
                _ => {}
            }
            Ok(())
        });
        store.data_mut().time = CallTime::new();
        let deadline_ticks = (limits.call_timeout_ms / EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(deadline_ticks);
        let fuel = limits.fuel_per_call;
        store
            .set_fuel(fuel)
            .map_err(|e| PluginFault::Trap(format!("{e}")))?;
        let bindings = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, e, limits.call_timeout_ms, fuel))?;
        Ok(PluginInstance {
            store,
            bindings,
            deadline_ticks,
            timeout_ms: limits.call_timeout_ms,
            fuel_per_call: fuel,
            stats: CallStats::default(),
        })
    }

    fn guarded<R>(
        &mut self,
        f: impl FnOnce(&Controller, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFault> {
        self.guarded_capped(OUTPUT_BYTES_MAX, f)
    }

    /// [`guarded`](Self::guarded) with `max_bytes` copied from the plugin.
    fn guarded_capped<R>(
        &mut self,
        max_bytes: usize,
        f: impl FnOnce(&Controller, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFault> {
        self.store.set_hostcall_fuel(max_bytes);
        self.store.set_epoch_deadline(self.deadline_ticks);
        let data = self.store.data_mut();
        data.time = CallTime::new();
        // Fuel is a per-call budget: refilled before every call.
        let _ = self.store.set_fuel(self.fuel_per_call);
        let result = f(&self.bindings, &mut self.store);
        let used = self
            .fuel_per_call
            .saturating_sub(self.store.get_fuel().unwrap_or(0));
        let s = &mut self.stats;
        s.calls += 1;
        s.fuel_last = used;
        s.fuel_max = s.fuel_max.max(used);
        s.fuel_total = s.fuel_total.saturating_add(used);
        s.memory_bytes = self.store.data().limiter.peak_bytes as u64;
        result.map_err(|e| classify(&self.store, e, self.timeout_ms, self.fuel_per_call))
    }

    pub fn init(&mut self, config: &str) -> Result<(), PluginFault> {
        self.guarded(|b, s| b.call_init(s, config))?
            .map_err(PluginFault::InitFailed)
    }

    pub fn describe(&mut self) -> Result<wit::Description, PluginFault> {
        self.guarded(|b, s| b.call_describe(s))
    }

    pub fn on_state(&mut self, change: &wit::StateChange) -> Result<wit::Output, PluginFault> {
        self.guarded(|b, s| b.call_on_state(s, change))
    }

    pub fn tick(&mut self, now_ms: i64) -> Result<wit::Output, PluginFault> {
        self.guarded(|b, s| b.call_tick(s, now_ms))
    }

    /// Saved state may be as large as the plugin's memory (an anomaly
    /// detector's forests take a few hundred KiB per stream), not
    /// [`OUTPUT_BYTES_MAX`]; the memory cap bounds it.
    pub fn save(&mut self) -> Result<Vec<u8>, PluginFault> {
        let cap = self.store.data().limiter.max_bytes;
        self.guarded_capped(cap, |b, s| b.call_save(s))
    }

    /// `Ok(Err(reason))`: the plugin declined the state and starts fresh.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Result<(), String>, PluginFault> {
        self.guarded(|b, s| b.call_restore(s, bytes))
    }

    /// Whether a call hit the memory cap.
    /// Makes the plugin's `call-results` read `outcomes` (its runner's).
    pub fn share_outcomes(&mut self, outcomes: &std::sync::Arc<super::outcomes::CallOutcomes>) {
        self.store.data_mut().outcomes = outcomes.clone();
    }

    pub fn memory_cap_hit(&self) -> bool {
        self.store.data().limiter.hit
    }
}

fn classify(
    store: &Store<HostState>,
    e: wasmtime::Error,
    timeout_ms: u64,
    fuel: u64,
) -> PluginFault {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => return PluginFault::Timeout(timeout_ms),
        Some(wasmtime::Trap::OutOfFuel) => return PluginFault::OutOfFuel(fuel),
        _ => {}
    }
    if format!("{e:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        let cap = store.hostcall_fuel();
        return PluginFault::BadOutput(format!(
            "handed the host more than its cap of {} KiB in one call (refused before the host copied it)",
            cap >> 10
        ));
    }
    if store.data().limiter.hit {
        return PluginFault::OutOfMemory(format!(
            "cap is {} MiB",
            store.data().limiter.max_bytes >> 20
        ));
    }
    // The first line names the trap; the backtrace that follows is noise here.
    let text = format!("{e:#}");
    PluginFault::Trap(text.lines().next().unwrap_or("unknown trap").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_budget_counts_the_plugins_time_only() {
        let budget = 200 * MS;
        // No host time: what is left of the budget, in whole ticks (10 ms).
        assert_eq!(remaining_ticks(5 * MS, Duration::ZERO, budget), Some(20));
        assert_eq!(remaining_ticks(195 * MS, Duration::ZERO, budget), Some(1));
        assert_eq!(remaining_ticks(200 * MS, Duration::ZERO, budget), None);
        // A 500 ms read: 520 ms elapsed is 20 ms of the plugin's own.
        assert_eq!(remaining_ticks(520 * MS, 500 * MS, budget), Some(18));
        // Credited once: the read does not buy more than its own length.
        assert_eq!(remaining_ticks(700 * MS, 500 * MS, budget), None);
        // At most HOST_IO_CREDIT_MAX per call, however long the reads.
        let long = Duration::from_secs(60);
        assert_eq!(remaining_ticks(long, long, budget), None);
        assert_eq!(
            remaining_ticks(HOST_IO_CREDIT_MAX + 100 * MS, long, budget),
            Some(10)
        );
    }
}
