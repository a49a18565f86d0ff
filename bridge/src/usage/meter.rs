//! Turning an outlet's energy counter (Wh, `total_increasing`) into
//! increments, the way HA's recorder reads such a sensor
//! (`homeassistant/components/sensor/recorder.py`): a fall of more than
//! 10 % is a reset and the new value is what was used since it; a smaller
//! fall is meter noise and counts nothing (the baseline stays, so the
//! recovery is not counted twice).

/// One outlet's counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counter {
    /// The last reading counted from, Wh; `None` until the first one.
    last_wh: Option<f64>,
}

/// HA counts a fall below 90 % of the previous reading as a reset.
const RESET_RATIO: f64 = 0.9;

impl Counter {
    /// A counter that continues from `wh` (the last reading recorded).
    pub fn from_reading(wh: Option<f64>) -> Self {
        Counter {
            last_wh: wh.filter(|v| v.is_finite() && *v >= 0.0),
        }
    }

    pub fn last(&self) -> Option<f64> {
        self.last_wh
    }

    /// Wh used since the previous reading. The first reading is a
    /// baseline (0); negative or non-finite readings are ignored.
    pub fn advance(&mut self, wh: f64) -> f64 {
        if !wh.is_finite() || wh < 0.0 {
            return 0.0;
        }
        let Some(last) = self.last_wh else {
            self.last_wh = Some(wh);
            return 0.0;
        };
        if wh >= last {
            self.last_wh = Some(wh);
            wh - last
        } else if wh < last * RESET_RATIO {
            self.last_wh = Some(wh);
            wh
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_resets_and_noise() {
        let mut c = Counter::default();
        assert_eq!(c.advance(100.0), 0.0, "the first reading is a baseline");
        assert_eq!(c.advance(130.0), 30.0);
        // The strip restarted: it counted 5 Wh since.
        assert_eq!(c.advance(5.0), 5.0);
        assert_eq!(c.advance(12.0), 7.0);
        // A dip within 10 % is noise; the recovery is not counted twice.
        assert_eq!(c.advance(11.5), 0.0);
        assert_eq!(c.advance(13.0), 1.0);
        assert_eq!(c.advance(f64::NAN), 0.0);
        assert_eq!(c.advance(-3.0), 0.0);
        let mut restored = Counter::from_reading(Some(13.0));
        assert_eq!(restored.advance(20.0), 7.0);
    }
}
