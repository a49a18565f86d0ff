//! The SHT4x (SHT40/41/45) on I2C: one high-precision measurement per call.
//!
//! A failed measurement (I2C error, CRC mismatch, implausible value) is not
//! hidden and never replaced by a made-up value: the telemetry field stays
//! absent, a log line says why, and the failure is counted.

use esp_hal::{Blocking, delay::Delay, i2c::master::I2c};
use hearth_node_core::Telemetry;
use sht4x::{Precision, Sht4x};

pub struct Sensor {
    dev: Sht4x<I2c<'static, Blocking>, Delay>,
    delay: Delay,
    /// Failed measurements since boot.
    pub errors: u32,
}

impl Sensor {
    pub fn new(i2c: I2c<'static, Blocking>) -> Self {
        Sensor {
            dev: Sht4x::new(i2c),
            delay: Delay::new(),
            errors: 0,
        }
    }

    /// Measures into `t.temperature` / `t.humidity`; both stay `None` on a
    /// failure (logged and counted). A value outside node-core's plausible
    /// range ([`Telemetry::check`]) is dropped the same way.
    pub fn measure_into(&mut self, t: &mut Telemetry) {
        match self.dev.measure(Precision::High, &mut self.delay) {
            Ok(m) => {
                t.temperature = Some(m.temperature_milli_celsius() as f32 / 1000.0);
                // The datasheet's conversion (-6 + 125 x) can leave 0..100 %RH
                // near saturation; Sensirion says to crop it to the range.
                let rh = m.humidity_milli_percent() as f32 / 1000.0;
                t.humidity = Some(rh.clamp(0.0, 100.0));
                // At most one pass per field: each failing field is removed.
                for _ in 0..3 {
                    match t.check() {
                        Ok(()) => break,
                        Err((field, value)) => {
                            self.errors = self.errors.saturating_add(1);
                            log::error!(
                                "sensor: implausible {field} = {value}, not sent (errors since boot: {})",
                                self.errors
                            );
                            match field {
                                "temperature" => t.temperature = None,
                                "humidity" => t.humidity = None,
                                "rssi" => t.rssi = None,
                                _ => break,
                            }
                        }
                    }
                }
            }
            Err(e) => {
                self.errors = self.errors.saturating_add(1);
                let why = match e {
                    sht4x::Error::I2c(_) => "I2C error (wiring, address 0x44, pull-ups?)",
                    sht4x::Error::Crc => "CRC mismatch",
                    _ => "unknown error",
                };
                log::error!(
                    "sensor: SHT4x measurement failed: {why}; temperature and humidity not sent (errors since boot: {})",
                    self.errors
                );
            }
        }
    }
}
