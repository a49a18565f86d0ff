//! A Gen1 device's energy counter made fit for Home Assistant's
//! `total_increasing`: never backwards, across the device's reboots and
//! the bridge's restarts.
//!
//! A Gen1 relay meter counts in **watt-minutes since boot** (Shelly Gen1
//! API, "/status": `meters[].total`, "Total energy consumed by the attached
//! electrical appliance in Watt-minute"; MQTT `relay/<n>/energy`, same
//! unit): a reboot (power cut, firmware update) starts it from 0. The
//! driver shows `offset + counter` in Wh, and keeps the device's own
//! counter (Wh) as a diagnostic sensor beside it, so both are recorded and
//! a restarted bridge knows where the device was:
//!
//! - a reading below the last one by more than [`STALE_WH`], or one at
//!   most [`NEAR_ZERO_WH`] after one above it, is a reboot: the offset
//!   grows by the last counter value;
//! - a smaller drop is a stale reading (an HTTP answer taken just before
//!   an MQTT message that arrived first): ignored (a drop to under half
//!   is not enough: with small counters, 4 Wh then a stale 1.9 Wh would
//!   count the 4 Wh twice);
//! - when polling, `/status` `uptime` going down is the sure sign of a
//!   reboot ([`Meter::rebooted`]): the next reading is a new count,
//!   whatever its size;
//! - at start, the last recorded total and device counter ([`Meter::resume`])
//!   give the offset; a first reading below the recorded counter means the
//!   device rebooted while the bridge was away (the energy used between
//!   the last record and that reboot is lost, never counted twice).

/// Wh: a drop this large is a reset, a smaller one a stale reading (a
/// few seconds of a 2.5 kW load is ~2 Wh).
pub const STALE_WH: f64 = 10.0;

/// Wh: a counter at most this (30 watt-minutes), read after one above it,
/// has started again from 0.
pub const NEAR_ZERO_WH: f64 = 0.5;

/// Wh per watt-minute.
pub const WH_PER_WATT_MINUTE: f64 = 1.0 / 60.0;

/// What [`Meter::update`] made of a reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// The total to show (Wh).
    Total(f64),
    /// The device's counter restarted; the total to show (Wh).
    Reset(f64),
    /// Older than what was already seen: nothing to show.
    Stale,
}

/// One monotonic energy total over a counter that resets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meter {
    /// Wh added to the device's counter.
    offset_wh: f64,
    /// The device counter's last accepted value (Wh).
    last_counter_wh: Option<f64>,
    /// The first reading continues from `offset_wh` (resumed without a
    /// counter).
    rebase: bool,
    /// The device rebooted (its uptime went down): the next reading starts
    /// a new count.
    reboot: bool,
}

impl Meter {
    /// Continues from a recorded total and device counter (Wh; both from
    /// the same moment, the recorder's last values).
    pub fn resume(total_wh: Option<f64>, counter_wh: Option<f64>) -> Meter {
        match (total_wh, counter_wh) {
            (Some(t), Some(c)) if t >= c => Meter {
                offset_wh: t - c,
                last_counter_wh: Some(c),
                rebase: false,
                reboot: false,
            },
            // A total without its counter (or an odd pair): the next
            // reading continues from the total (what the device counted
            // meanwhile is lost, never counted twice).
            (Some(t), _) => Meter {
                offset_wh: t,
                last_counter_wh: None,
                rebase: true,
                reboot: false,
            },
            (None, _) => Meter::default(),
        }
    }

    /// The device restarted (its `uptime` went down): the next reading is
    /// a count since that boot, added to what was counted before.
    pub fn rebooted(&mut self) {
        self.reboot = self.last_counter_wh.is_some();
    }

    /// A device counter reading (Wh, already checked finite and ≥ 0).
    pub fn update(&mut self, counter_wh: f64) -> Reading {
        let Some(last) = self.last_counter_wh else {
            if std::mem::take(&mut self.rebase) {
                self.offset_wh -= counter_wh;
            }
            self.last_counter_wh = Some(counter_wh);
            return Reading::Total(self.offset_wh + counter_wh);
        };
        if std::mem::take(&mut self.reboot) {
            self.offset_wh += last;
            self.last_counter_wh = Some(counter_wh);
            return Reading::Reset(self.offset_wh + counter_wh);
        }
        if counter_wh >= last {
            self.last_counter_wh = Some(counter_wh);
            return Reading::Total(self.offset_wh + counter_wh);
        }
        if last - counter_wh > STALE_WH || (counter_wh <= NEAR_ZERO_WH && last > NEAR_ZERO_WH) {
            self.offset_wh += last;
            self.last_counter_wh = Some(counter_wh);
            return Reading::Reset(self.offset_wh + counter_wh);
        }
        Reading::Stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reboot_continues_from_the_last_total() {
        let mut m = Meter::default();
        assert_eq!(m.update(6000.0 * WH_PER_WATT_MINUTE), Reading::Total(100.0));
        assert_eq!(m.update(120.0), Reading::Total(120.0));
        // Reboot: the counter starts again from 0.
        assert_eq!(m.update(0.0), Reading::Reset(120.0));
        assert_eq!(m.update(5.0), Reading::Total(125.0));
        // A stale reading (1 Wh older) changes nothing.
        assert_eq!(m.update(4.0), Reading::Stale);
        assert_eq!(m.update(6.0), Reading::Total(126.0));
    }

    /// Small counters: a stale 1.9 Wh after 4 Wh is not a reboot (it was
    /// counted as one when any drop to under half was: 4.1 Wh then showed
    /// 8.1 Wh).
    #[test]
    fn a_stale_small_drop_is_not_a_reset() {
        let mut m = Meter::default();
        assert_eq!(m.update(4.0), Reading::Total(4.0));
        assert_eq!(m.update(1.9), Reading::Stale);
        assert_eq!(m.update(4.1), Reading::Total(4.1));
        // Back to (near) 0 from above it: a reboot.
        assert_eq!(m.update(0.2), Reading::Reset(4.3));
        assert_eq!(m.update(0.1), Reading::Stale, "0.1 after 0.2 is old");
    }

    /// `uptime` went down: a reboot, whatever the counter's size.
    #[test]
    fn a_known_reboot_counts_the_next_reading_as_a_new_count() {
        let mut m = Meter::default();
        assert_eq!(m.update(4.0), Reading::Total(4.0));
        m.rebooted();
        assert_eq!(m.update(1.9), Reading::Reset(5.9));
        m.rebooted();
        // Counted more since the boot than before it: still a new count.
        assert_eq!(m.update(3.0), Reading::Reset(8.9));
        assert_eq!(m.update(3.5), Reading::Total(9.4));
    }

    #[test]
    fn a_restart_resumes_with_or_without_a_device_reboot_meanwhile() {
        // Recorded: total 150 Wh while the device counted 50 Wh.
        let mut same_boot = Meter::resume(Some(150.0), Some(50.0));
        assert_eq!(same_boot.update(60.0), Reading::Total(160.0));
        let mut rebooted = Meter::resume(Some(150.0), Some(50.0));
        assert_eq!(rebooted.update(2.0), Reading::Reset(152.0));
        // Only a total (the counter was not recorded): continue from it.
        let mut floor = Meter::resume(Some(150.0), None);
        assert_eq!(floor.update(70.0), Reading::Total(150.0));
        assert_eq!(floor.update(75.0), Reading::Total(155.0));
        assert_eq!(floor.update(0.0), Reading::Reset(155.0));
        assert_eq!(Meter::resume(None, None), Meter::default());
    }
}
