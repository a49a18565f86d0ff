//! The status of Shelly's energy-meter components, as plain functions (no
//! I/O), so they are tested here.
//!
//! Sources: Shelly "Gen2+ Device API" docs, components
//! [EM](https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM)
//! (`EM.GetStatus {id}`: per phase `a_act_power`, `b_act_power`,
//! `c_act_power` W, `a_voltage`… V, `a_current`… A; `total_act_power` W,
//! `total_current` A),
//! [EMData](https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EMData)
//! (`EMData.GetStatus {id}`: `total_act` Wh imported, `total_act_ret` Wh
//! returned, the perpetual counters; per phase `a_total_act_energy`…),
//! [EM1](https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1)
//! (`EM1.GetStatus {id}`: `act_power` W, `voltage` V, `current` A,
//! `aprt_power` VA, `pf`, `freq`) and
//! [EM1Data](https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/EM1Data)
//! (`EM1Data.GetStatus {id}`: `total_act_energy`, `total_act_ret_energy`
//! Wh). Active power is signed: positive is drawn from the line the clamp
//! is on (imported), negative returned (exported). `EMData.ResetCounters`
//! / `EM1Data.ResetCounters` zero the counters: a reading may fall to 0.

use serde_json::{Map, Value};

/// What went wrong with one answer; the message names the component, the
/// field and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("{component}.{field}: expected {expected}, got {got}")]
    Field {
        component: String,
        field: &'static str,
        expected: &'static str,
        got: String,
    },
}

/// One phase of a triphase `em` component.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phase {
    /// W, signed.
    pub power_w: f64,
    pub voltage_v: Option<f64>,
    pub current_a: Option<f64>,
}

/// `EM.GetStatus` or `EM1.GetStatus`, as the driver uses them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PowerStatus {
    /// W, signed: `total_act_power` or `act_power`.
    pub power_w: f64,
    /// A: `total_current` (EM) or `current` (EM1).
    pub current_a: Option<f64>,
    /// V: EM1 only (EM has one per phase).
    pub voltage_v: Option<f64>,
    /// Phases a, b, c (EM); empty for EM1.
    pub phases: Vec<Phase>,
}

/// The perpetual counters, Wh.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Energy drawn from the line (`total_act`, `total_act_energy`).
    pub import_wh: f64,
    /// Energy returned to it (`total_act_ret`, `total_act_ret_energy`).
    pub export_wh: f64,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Fields<'a> {
    component: String,
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(component: String, v: &'a Value, id: u32) -> Result<Self, RpcError> {
        let obj = v.as_object().ok_or_else(|| RpcError::Field {
            component: component.clone(),
            field: "",
            expected: "an object",
            got: kind(v).into(),
        })?;
        if let Some(got) = obj.get("id")
            && got.as_u64() != Some(u64::from(id))
        {
            return Err(RpcError::Field {
                component,
                field: "id",
                expected: "the component's own id",
                got: crate::broker::excerpt(got.to_string().as_bytes()),
            });
        }
        Ok(Fields { component, obj })
    }

    fn optional(&self, field: &'static str, unit: &'static str) -> Result<Option<f64>, RpcError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => x
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| RpcError::Field {
                    component: self.component.clone(),
                    field,
                    expected: unit,
                    got: kind(x).into(),
                }),
        }
    }

    fn required(&self, field: &'static str, unit: &'static str) -> Result<f64, RpcError> {
        self.optional(field, unit)?.ok_or_else(|| RpcError::Field {
            component: self.component.clone(),
            field,
            expected: unit,
            got: "nothing".into(),
        })
    }
}

const W: &str = "a finite number (W)";
const V: &str = "a finite number (V)";
const A: &str = "a finite number (A)";
const WH: &str = "a finite number (Wh)";

/// `EM.GetStatus {id}` of a triphase meter.
pub fn parse_em(id: u32, v: &Value) -> Result<PowerStatus, RpcError> {
    let f = Fields::new(format!("em:{id}"), v, id)?;
    let phase = |p: [&'static str; 3]| -> Result<Phase, RpcError> {
        Ok(Phase {
            power_w: f.required(p[0], W)?,
            voltage_v: f.optional(p[1], V)?,
            current_a: f.optional(p[2], A)?,
        })
    };
    Ok(PowerStatus {
        power_w: f.required("total_act_power", W)?,
        current_a: f.optional("total_current", A)?,
        voltage_v: None,
        phases: vec![
            phase(["a_act_power", "a_voltage", "a_current"])?,
            phase(["b_act_power", "b_voltage", "b_current"])?,
            phase(["c_act_power", "c_voltage", "c_current"])?,
        ],
    })
}

/// `EMData.GetStatus {id}`.
pub fn parse_emdata(id: u32, v: &Value) -> Result<Counters, RpcError> {
    let f = Fields::new(format!("emdata:{id}"), v, id)?;
    Ok(Counters {
        import_wh: f.required("total_act", WH)?,
        export_wh: f.required("total_act_ret", WH)?,
    })
}

/// `EM1.GetStatus {id}`.
pub fn parse_em1(id: u32, v: &Value) -> Result<PowerStatus, RpcError> {
    let f = Fields::new(format!("em1:{id}"), v, id)?;
    Ok(PowerStatus {
        power_w: f.required("act_power", W)?,
        current_a: f.optional("current", A)?,
        voltage_v: f.optional("voltage", V)?,
        phases: Vec::new(),
    })
}

/// `EM1Data.GetStatus {id}`.
pub fn parse_em1data(id: u32, v: &Value) -> Result<Counters, RpcError> {
    let f = Fields::new(format!("em1data:{id}"), v, id)?;
    Ok(Counters {
        import_wh: f.required("total_act_energy", WH)?,
        export_wh: f.required("total_act_ret_energy", WH)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_answers_parse() {
        let em = json!({"id":0,"a_current":4.029,"a_voltage":236.1,"a_act_power":951.2,"a_aprt_power":951.9,
            "a_pf":1.0,"b_current":4.027,"b_voltage":236.2,"b_act_power":-951.1,"b_aprt_power":951.4,"b_pf":1.0,
            "c_current":3.03,"c_voltage":236.3,"c_act_power":715.0,"c_aprt_power":715.3,"c_pf":1.0,
            "n_current":null,"total_current":11.087,"total_act_power":715.1,"total_aprt_power":2618.6,
            "user_calibrated_phase":[]});
        let s = parse_em(0, &em).unwrap();
        assert_eq!(s.power_w, 715.1);
        assert_eq!(s.current_a, Some(11.087));
        assert_eq!(s.phases.len(), 3);
        assert_eq!(s.phases[1].power_w, -951.1);
        assert_eq!(s.phases[2].voltage_v, Some(236.3));
        let d = json!({"id":0,"a_total_act_energy":2000.0,"a_total_act_ret_energy":10.0,
            "total_act":12345.678,"total_act_ret":321.5});
        assert_eq!(
            parse_emdata(0, &d).unwrap(),
            Counters {
                import_wh: 12345.678,
                export_wh: 321.5
            }
        );
        let em1 = json!({"id":1,"current":2.598,"voltage":234.9,"act_power":501.8,"aprt_power":612.4,
            "pf":0.84,"freq":50,"calibration":"factory"});
        let s = parse_em1(1, &em1).unwrap();
        assert_eq!(
            (s.power_w, s.voltage_v, s.current_a),
            (501.8, Some(234.9), Some(2.598))
        );
        let d1 = json!({"id":1,"total_act_energy":88.5,"total_act_ret_energy":3.25});
        assert_eq!(parse_em1data(1, &d1).unwrap().export_wh, 3.25);
    }

    #[test]
    fn bad_answers_name_the_component_and_field() {
        for (e, want) in [
            (
                parse_em(0, &json!({"id":0,"total_act_power":"1"})).unwrap_err(),
                "em:0.total_act_power: expected a finite number (W), got a string",
            ),
            (
                parse_em(0, &json!({"id":0,"total_act_power":1.0})).unwrap_err(),
                "em:0.a_act_power: expected a finite number (W), got nothing",
            ),
            (
                parse_emdata(0, &json!({"id":0,"total_act":5.0})).unwrap_err(),
                "emdata:0.total_act_ret: expected a finite number (Wh), got nothing",
            ),
            (
                parse_em1(1, &json!({"id":0,"act_power":1.0})).unwrap_err(),
                "em1:1.id: expected the component's own id, got 0",
            ),
            (
                parse_em1data(0, &json!([1])).unwrap_err(),
                "em1data:0.: expected an object, got an array",
            ),
        ] {
            assert_eq!(e.to_string(), want);
        }
    }
}
