//! The Pro 4PM's outlets as Home Assistant sees them: per outlet a
//! `switch` (`switch.<id>_outlet<n>`, `n` = switch id + 1, as the device's
//! own web UI numbers its channels) and four sensors: `_power` (W),
//! `_current` (A), `_voltage` (V), `_energy` (Wh, `total_increasing`; the
//! device's `aenergy.total`).

use super::config::ShellyPro4pmConfig;
use super::rpc::OutletStatus;
use crate::entity::{Component, EntitySpec, entity_id_for};

/// (key suffix, name suffix, device class, unit, state class, decimals).
pub const SENSORS: [(&str, &str, &str, &str, &str, usize); 4] = [
    ("power", "power", "power", "W", "measurement", 1),
    ("current", "current", "current", "A", "measurement", 3),
    ("voltage", "voltage", "voltage", "V", "measurement", 1),
    ("energy", "energy", "energy", "Wh", "total_increasing", 1),
];

/// `outlet<n>` for switch `id` (0-based): the key within the device.
pub fn outlet_key(id: usize) -> String {
    format!("outlet{}", id + 1)
}

pub fn switch_entity(device: &str, id: usize) -> String {
    entity_id_for(Component::Switch, device, &outlet_key(id))
}

pub fn sensor_entity(device: &str, id: usize, key: &str) -> String {
    entity_id_for(
        Component::Sensor,
        device,
        &format!("{}_{key}", outlet_key(id)),
    )
}

/// The switch and the sensors of switch `id` (0-based).
pub fn outlet_entities(cfg: &ShellyPro4pmConfig, id: usize) -> Vec<EntitySpec> {
    let name = cfg.outlet_name(id + 1);
    let mut specs = vec![
        EntitySpec::new(&cfg.id, &outlet_key(id), Component::Switch)
            .named(&name)
            .class("outlet"),
    ];
    for (key, suffix, class, unit, state_class, _) in SENSORS {
        specs.push(
            EntitySpec::new(
                &cfg.id,
                &format!("{}_{key}", outlet_key(id)),
                Component::Sensor,
            )
            .named(&format!("{name} {suffix}"))
            .class(class)
            .measured(unit, state_class),
        );
    }
    specs
}

/// The sensor values of a status, in [`SENSORS`] order.
pub fn sensor_values(s: &OutletStatus) -> [Option<f64>; 4] {
    [s.apower, s.current, s.voltage, s.energy_wh]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_follow_ha_names_and_units() {
        let cfg: ShellyPro4pmConfig =
            toml::from_str("id = \"p4\"\nname = \"P\"\nhost = \"h\"\noutlet_names = [\"Lamp\"]")
                .unwrap();
        let specs = outlet_entities(&cfg, 0);
        let ids: Vec<&str> = specs.iter().map(|s| s.entity_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "switch.p4_outlet1",
                "sensor.p4_outlet1_power",
                "sensor.p4_outlet1_current",
                "sensor.p4_outlet1_voltage",
                "sensor.p4_outlet1_energy"
            ]
        );
        assert_eq!(specs[4].name.as_deref(), Some("Lamp energy"));
        assert_eq!(specs[4].unit.as_deref(), Some("Wh"));
        assert_eq!(specs[4].state_class.as_deref(), Some("total_increasing"));
        assert_eq!(switch_entity("p4", 3), "switch.p4_outlet4");
        assert_eq!(sensor_entity("p4", 3, "power"), "sensor.p4_outlet4_power");
    }
}
