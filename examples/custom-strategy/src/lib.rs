//! Example controller plugin: a second strategy for the server room — a PI
//! controller driving the air conditioner's **target temperature**, cascaded
//! over the AC's own return-air thermostat (the thermostat plugin instead
//! switches the AC's power on and off around a fixed target).
//!
//! ```text
//! e = room − setpoint                              (°C)
//! u = setpoint − (Kp·e + Ki·∫e dt)                 (°C, the AC's target)
//! target = round_to_step(clamp(u, min_ac_temp, max_ac_temp))
//! ```
//!
//! - Sampled on `tick` every `period_s` (30 s) of host time; `dt` comes from
//!   the ticks' `now_ms`, is 0 on the first tick and capped at `2·period_s`
//!   after a gap.
//! - Anti-windup by conditional integration with a bounded integrator
//!   (Åström & Hägglund, "Advanced PID Control", 2006, ch. 3, §3.5;
//!   Åström & Murray, "Feedback Systems", §10.4): why this and not
//!   back-calculation is in [`pi`].
//! - The target is rounded to `ac_temp_step` (1 °C for IR ACs) and sent as
//!   `climate.set_temperature` only when the rounded value changes, plus a
//!   keep-alive re-send every `keep_alive` s (IR is one-way).
//! - The AC is kept on: a climate in mode `off` gets `climate.set_hvac_mode`
//!   `cool`, a configured `switch` that is off gets `switch.turn_on` (retried
//!   at most once a minute: the safety envelope may refuse a restart).
//! - The setpoint is the config's `target_temp`: the climate's own target is
//!   this plugin's output, so changing it in Home Assistant is overwritten at
//!   the next send.
//!
//! The law ([`pi`]) and the strategy around it ([`strategy`]) are pure and
//! tested natively (`cargo test -p hearth-plugin-custom-strategy`); only the
//! glue to the host and the component's exports are built for `wasm32`.

pub mod pi;
pub mod strategy;

#[cfg(target_arch = "wasm32")]
mod plugin {
    use crate::strategy::{Action, Config, Inputs, Saved, Strategy};
    use hearth_plugin_sdk::serde_json::{Value, json};
    use hearth_plugin_sdk::{
        Change, Controller, Description, Output, State, export_controller, info, restore_json,
        save_json, sensor,
    };

    const AC_TARGET: &str = "ac_target";
    const INTEGRAL: &str = "integral";

    struct PiStrategy(Strategy);

    impl PiStrategy {
        fn inputs(&self) -> Inputs {
            let cfg = &self.0.cfg;
            Inputs {
                room: State::get(&cfg.sensor).and_then(|s| s.number()),
                climate: State::get(&cfg.climate).map(|s| s.state),
                switch_on: cfg
                    .switch
                    .as_deref()
                    .and_then(State::get)
                    .and_then(|s| s.is_on()),
            }
        }
    }

    impl Controller for PiStrategy {
        fn init(config: Value) -> Result<Self, String> {
            let cfg = Config::parse(config).map_err(|e| format!("pi-strategy {e}"))?;
            Ok(PiStrategy(Strategy::new(cfg)))
        }

        fn describe(&self) -> Description {
            let cfg = &self.0.cfg;
            let mut reads = vec![cfg.sensor.clone(), cfg.climate.clone()];
            let mut drives = vec![cfg.climate.clone()];
            reads.extend(cfg.switch.clone());
            drives.extend(cfg.switch.clone());
            Description {
                name: "pi-strategy".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                reads,
                drives,
                config_schema: "{}".into(),
                tick_period_ms: cfg.period_ms(),
                entities: vec![
                    sensor(AC_TARGET, "AC target (PI output)")
                        .unit("°C")
                        .device_class("temperature")
                        .state_class("measurement"),
                    sensor(INTEGRAL, "PI integral term")
                        .unit("°C")
                        .state_class("measurement"),
                ],
            }
        }

        fn on_state(&mut self, _change: Change, _out: &mut Output) {
            // Counted, every one (the climate's and the switch's echoes too);
            // the law runs on ticks, at a fixed sample time.
            self.0.on_event();
        }

        fn tick(&mut self, now_ms: i64, out: &mut Output) {
            let inputs = self.inputs();
            let d = self.0.tick(now_ms, &inputs);
            for note in &d.notes {
                info(note);
            }
            let cfg = &self.0.cfg;
            for action in &d.actions {
                match action {
                    Action::SetTemperature(t) => out.set_temperature(&cfg.climate, *t),
                    Action::SetModeCool => out.set_hvac_mode(&cfg.climate, "cool"),
                    Action::SwitchOn => {
                        if let Some(switch) = &cfg.switch {
                            out.turn_on(switch);
                        }
                    }
                }
            }
            if let Some(step) = d.step {
                let attributes = json!({
                    "commanded": self.0.saved.last_target,
                    "setpoint": cfg.target_temp,
                    "error": step.error,
                    "p": step.p,
                    "integral": step.integral,
                    "unclamped": step.unclamped,
                    "integrator_held": step.held,
                });
                out.entity_with(AC_TARGET, &format!("{:.2}", step.target), attributes);
                out.number(INTEGRAL, step.integral, 2);
            }
        }

        fn save(&self) -> Vec<u8> {
            save_json(&self.0.saved)
        }

        fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
            self.0.saved = restore_json::<Saved>(bytes)?;
            Ok(())
        }
    }

    export_controller!(PiStrategy);
}
