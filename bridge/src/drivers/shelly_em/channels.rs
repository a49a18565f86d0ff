//! A channel's entities as Home Assistant sees them, by role:
//!
//! | role | sensor (suffix) | unit | device class | state class |
//! |---|---|---|---|---|
//! | both | `power` (+ import / − export for grid; production for pv) | W | power | measurement |
//! | grid | `import_energy` (`total_act`, `total_act_energy`) | Wh | energy | total_increasing |
//! | grid | `export_energy` (`total_act_ret`, `total_act_ret_energy`) | Wh | energy | total_increasing |
//! | production | `energy` (the import counter, after `invert`) | Wh | energy | total_increasing |
//! | both | `current` (EM: `total_current`) | A | current | measurement |
//! | EM1 | `voltage` | V | voltage | measurement |
//! | EM (triphase) | `power_a`/`_b`/`_c`, `voltage_a`/`_b`/`_c` | W, V | power, voltage | measurement |
//!
//! Entity ids: `sensor.<device>_<key>_<suffix>`, or
//! `sensor.<entity_prefix>_<suffix>` when the channel sets one (so a
//! meter can give the ids the solar-house contract names:
//! `sensor.grid_power`, `sensor.grid_import_energy`,
//! `sensor.grid_export_energy`, `sensor.pv_power`, `sensor.pv_energy`).

use super::config::{ChannelConfig, Model, Role, ShellyEmConfig};
use super::rpc::{Counters, PowerStatus};
use crate::entity::{Component, EntitySpec, entity_id_for};

/// One sensor of a channel: suffix, name suffix, device class, unit,
/// state class, decimals.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    pub suffix: String,
    pub name: String,
    pub class: &'static str,
    pub unit: &'static str,
    pub state_class: &'static str,
    pub decimals: usize,
}

fn sensor(
    suffix: &str,
    name: &str,
    class: &'static str,
    unit: &'static str,
    state_class: &'static str,
    decimals: usize,
) -> Sensor {
    Sensor {
        suffix: suffix.into(),
        name: name.into(),
        class,
        unit,
        state_class,
        decimals,
    }
}

/// The sensors of a channel, in the order [`values`] gives them.
pub fn sensors(model: Model, ch: &ChannelConfig) -> Vec<Sensor> {
    let mut s = vec![sensor("power", "power", "power", "W", "measurement", 1)];
    match ch.role {
        Role::Grid => {
            s.push(sensor(
                "import_energy",
                "import energy",
                "energy",
                "Wh",
                "total_increasing",
                2,
            ));
            s.push(sensor(
                "export_energy",
                "export energy",
                "energy",
                "Wh",
                "total_increasing",
                2,
            ));
        }
        Role::Production => s.push(sensor(
            "energy",
            "energy",
            "energy",
            "Wh",
            "total_increasing",
            2,
        )),
    }
    s.push(sensor(
        "current",
        "current",
        "current",
        "A",
        "measurement",
        3,
    ));
    match model {
        Model::Proem => s.push(sensor(
            "voltage",
            "voltage",
            "voltage",
            "V",
            "measurement",
            1,
        )),
        Model::Pro3em => {
            for p in ["a", "b", "c"] {
                s.push(sensor(
                    &format!("power_{p}"),
                    &format!("power phase {}", p.to_uppercase()),
                    "power",
                    "W",
                    "measurement",
                    1,
                ));
            }
            for p in ["a", "b", "c"] {
                s.push(sensor(
                    &format!("voltage_{p}"),
                    &format!("voltage phase {}", p.to_uppercase()),
                    "voltage",
                    "V",
                    "measurement",
                    1,
                ));
            }
        }
    }
    s
}

/// The entity id of a channel's sensor.
pub fn entity_id(device: &str, ch: &ChannelConfig, suffix: &str) -> String {
    match &ch.entity_prefix {
        Some(p) => format!("sensor.{p}_{suffix}"),
        None => entity_id_for(Component::Sensor, device, &format!("{}_{suffix}", ch.key())),
    }
}

/// Every entity of a channel.
pub fn channel_entities(cfg: &ShellyEmConfig, ch: &ChannelConfig) -> Vec<EntitySpec> {
    let name = ch.display_name();
    sensors(cfg.model, ch)
        .into_iter()
        .map(|s| {
            let mut spec = EntitySpec::new(
                &cfg.id,
                &format!("{}_{}", ch.key(), s.suffix),
                Component::Sensor,
            )
            .named(&format!("{name} {}", s.name))
            .class(s.class)
            .measured(s.unit, s.state_class);
            spec.entity_id = entity_id(&cfg.id, ch, &s.suffix);
            spec
        })
        .collect()
}

/// The values of [`sensors`] from a poll: `None` where the device said
/// nothing. `invert` negates power and swaps the counters.
pub fn values(
    model: Model,
    ch: &ChannelConfig,
    power: &PowerStatus,
    counters: &Counters,
) -> Vec<Option<f64>> {
    let sign = if ch.invert { -1.0 } else { 1.0 };
    let (import, export) = if ch.invert {
        (counters.export_wh, counters.import_wh)
    } else {
        (counters.import_wh, counters.export_wh)
    };
    let mut v = vec![Some(sign * power.power_w)];
    match ch.role {
        Role::Grid => {
            v.push(Some(import));
            v.push(Some(export));
        }
        Role::Production => v.push(Some(import)),
    }
    v.push(power.current_a);
    match model {
        Model::Proem => v.push(power.voltage_v),
        Model::Pro3em => {
            for i in 0..3 {
                v.push(power.phases.get(i).map(|p| sign * p.power_w));
            }
            for i in 0..3 {
                v.push(power.phases.get(i).and_then(|p| p.voltage_v));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> ShellyEmConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn entities_follow_the_role_and_the_prefix() {
        let c = cfg(
            "id = \"em\"\nname = \"EM\"\nhost = \"h\"\nmodel = \"proem\"\n\
             [[channels]]\nrole = \"grid\"\nentity_prefix = \"grid\"\n\
             [[channels]]\nchannel = 1\nrole = \"production\"\ninvert = true\n",
        );
        let ids: Vec<String> = channel_entities(&c, &c.channels[0])
            .into_iter()
            .map(|s| s.entity_id)
            .collect();
        assert_eq!(
            ids,
            [
                "sensor.grid_power",
                "sensor.grid_import_energy",
                "sensor.grid_export_energy",
                "sensor.grid_current",
                "sensor.grid_voltage"
            ]
        );
        let pv = channel_entities(&c, &c.channels[1]);
        assert_eq!(pv[1].entity_id, "sensor.em_pv_energy");
        assert_eq!(pv[1].key, "pv_energy");
        assert_eq!(pv[1].state_class.as_deref(), Some("total_increasing"));
        assert_eq!(pv[1].device_class.as_deref(), Some("energy"));
        assert_eq!(pv[1].name.as_deref(), Some("Solar production energy"));
        // Inverted: a clamp reading −1500 W and 7000 Wh returned is 1500 W
        // and 7000 Wh produced.
        let p = PowerStatus {
            power_w: -1500.0,
            current_a: Some(6.5),
            voltage_v: Some(231.0),
            phases: vec![],
        };
        let k = Counters {
            import_wh: 12.0,
            export_wh: 7000.0,
        };
        assert_eq!(
            values(Model::Proem, &c.channels[1], &p, &k),
            [Some(1500.0), Some(7000.0), Some(6.5), Some(231.0)]
        );
        assert_eq!(
            values(Model::Proem, &c.channels[0], &p, &k),
            [
                Some(-1500.0),
                Some(12.0),
                Some(7000.0),
                Some(6.5),
                Some(231.0)
            ]
        );
        let t = cfg("id = \"m3\"\nname = \"3EM\"\nhost = \"h\"\n[[channels]]\nrole = \"grid\"\n");
        let s = sensors(Model::Pro3em, &t.channels[0]);
        assert_eq!(s.len(), 10);
        assert_eq!(
            channel_entities(&t, &t.channels[0])[5].entity_id,
            "sensor.m3_grid_power_b"
        );
    }
}
