//! The Gen1 MQTT API: what a device pushes under `shellies/<mqtt_id>/`,
//! parsed as plain functions, and the topics Hearth publishes.
//!
//! Source: Shelly Gen1 API docs (<https://shelly-api-docs.shelly.cloud/gen1/>),
//! "MQTT support" and the "Shelly Plug S / 1PM / EM: MQTT" pages:
//!
//! | topic | payload |
//! |---|---|
//! | `shellies/<id>/relay/<n>` | `on`, `off`, `overpower` (off by the device's own limit) |
//! | `shellies/<id>/relay/<n>/power` | W |
//! | `shellies/<id>/relay/<n>/energy` | watt-minutes since boot |
//! | `shellies/<id>/relay/<n>/command` | `on`, `off`, `toggle` (Hearth publishes) |
//! | `shellies/<id>/emeter/<i>/power`, `voltage` | W, V (EM) |
//! | `shellies/<id>/emeter/<i>/total`, `total_returned` | Wh (EM; its `energy`, `returned_energy`, `reactive_power`, `pf` are not used) |
//! | `shellies/<id>/online` | `true`, `false` (retained; `false` is the last will) |
//! | `shellies/<id>/announce` | `{"id","model","mac","ip","new_fw","fw_ver"}` |
//! | `shellies/<id>/command` | `announce`, `update` (Hearth publishes: the device answers with its announce / its state) |
//! | `shellies/command` | `announce` to every device |
//!
//! Other topics (`temperature`, `input/<n>`, `overtemperature`, …) are not
//! used. A value that is not what the table says (not UTF-8, not a number,
//! out of the ranges of [`super::http`]) is an error naming the topic.

use super::energy::WH_PER_WATT_MINUTE;
use super::http::{
    BadField, ENERGY_EXPECTED, ENERGY_LIMIT_WH, MAX_CHANNELS, POWER_EXPECTED, POWER_LIMIT_W,
    VOLTAGE_EXPECTED, VOLTAGE_LIMIT_V,
};

/// An EM channel's pushed value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EmeterField {
    PowerW(f64),
    VoltageV(f64),
    TotalWh(f64),
    ReturnedWh(f64),
}

/// One pushed message, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    Relay {
        n: usize,
        on: bool,
    },
    PowerW {
        n: usize,
        w: f64,
    },
    /// The relay meter's counter since boot, Wh.
    CounterWh {
        n: usize,
        wh: f64,
    },
    Emeter {
        i: usize,
        field: EmeterField,
    },
    Online(bool),
    Announce,
    /// A topic Hearth does not use (including its own commands).
    Other,
}

/// `shellies/<mqtt_id>`.
pub fn base(mqtt_id: &str) -> String {
    format!("shellies/{mqtt_id}")
}

/// The topic a relay command goes to.
pub fn command_topic(mqtt_id: &str, n: usize) -> String {
    format!("{}/relay/{n}/command", base(mqtt_id))
}

/// Asks one device to announce itself / publish its state.
pub fn device_command_topic(mqtt_id: &str) -> String {
    format!("{}/command", base(mqtt_id))
}

fn number(
    topic: &str,
    text: &str,
    lo: f64,
    hi: f64,
    expected: &'static str,
) -> Result<f64, BadField> {
    let got = |g: String| BadField::Field {
        field: topic.into(),
        expected,
        got: g,
    };
    let shown = || {
        got(format!(
            "`{}`",
            crate::broker::excerpt(text.trim().as_bytes())
        ))
    };
    let x: f64 = text.trim().parse().map_err(|_| shown())?;
    if x.is_finite() && (lo..=hi).contains(&x) {
        Ok(x)
    } else {
        Err(shown())
    }
}

fn channel(topic: &str, s: &str) -> Result<usize, BadField> {
    match s.parse::<usize>() {
        Ok(n) if n < MAX_CHANNELS && (s == "0" || !s.starts_with('0')) => Ok(n),
        _ => Err(BadField::Field {
            field: topic.into(),
            expected: "a channel number 0–3",
            got: format!("`{}`", crate::broker::excerpt(s.as_bytes())),
        }),
    }
}

/// A message on `topic` (under `shellies/<mqtt_id>/`, given as `base`).
pub fn parse(base: &str, topic: &str, payload: &[u8]) -> Result<Push, BadField> {
    let Some(rest) = topic.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
        return Ok(Push::Other);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let wanted = matches!(
        parts.as_slice(),
        ["online"]
            | ["announce"]
            | ["relay", _]
            | ["relay", _, "power" | "energy"]
            | [
                "emeter",
                _,
                "power" | "voltage" | "total" | "total_returned"
            ]
    );
    if !wanted {
        return Ok(Push::Other);
    }
    let text = std::str::from_utf8(payload).map_err(|e| BadField::Field {
        field: topic.into(),
        expected: "UTF-8 text",
        got: format!("invalid UTF-8 ({e})"),
    })?;
    let push = match parts.as_slice() {
        ["online"] => match text.trim() {
            "true" => Push::Online(true),
            "false" => Push::Online(false),
            other => {
                return Err(BadField::Field {
                    field: topic.into(),
                    expected: "true or false",
                    got: format!("`{}`", crate::broker::excerpt(other.as_bytes())),
                });
            }
        },
        ["announce"] => Push::Announce,
        ["relay", n] => Push::Relay {
            n: channel(topic, n)?,
            on: match text.trim() {
                "on" => true,
                "off" | "overpower" => false,
                other => {
                    return Err(BadField::Field {
                        field: topic.into(),
                        expected: "on, off or overpower",
                        got: format!("`{}`", crate::broker::excerpt(other.as_bytes())),
                    });
                }
            },
        },
        ["relay", n, "power"] => Push::PowerW {
            n: channel(topic, n)?,
            w: number(topic, text, -POWER_LIMIT_W, POWER_LIMIT_W, POWER_EXPECTED)?,
        },
        ["relay", n, "energy"] => Push::CounterWh {
            n: channel(topic, n)?,
            wh: number(
                topic,
                text,
                0.0,
                ENERGY_LIMIT_WH / WH_PER_WATT_MINUTE,
                "a number of watt-minutes ≥ 0 below 1 GWh",
            )? * WH_PER_WATT_MINUTE,
        },
        ["emeter", i, what] => {
            let i = channel(topic, i)?;
            let field = match *what {
                "power" => EmeterField::PowerW(number(
                    topic,
                    text,
                    -POWER_LIMIT_W,
                    POWER_LIMIT_W,
                    POWER_EXPECTED,
                )?),
                "voltage" => EmeterField::VoltageV(number(
                    topic,
                    text,
                    0.0,
                    VOLTAGE_LIMIT_V,
                    VOLTAGE_EXPECTED,
                )?),
                "total" => EmeterField::TotalWh(number(
                    topic,
                    text,
                    0.0,
                    ENERGY_LIMIT_WH,
                    ENERGY_EXPECTED,
                )?),
                _ => EmeterField::ReturnedWh(number(
                    topic,
                    text,
                    0.0,
                    ENERGY_LIMIT_WH,
                    ENERGY_EXPECTED,
                )?),
            };
            Push::Emeter { i, field }
        }
        _ => Push::Other,
    };
    Ok(push)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "shellies/shellyplug-s-C18B12";

    fn p(suffix: &str, payload: &[u8]) -> Result<Push, BadField> {
        parse(B, &format!("{B}/{suffix}"), payload)
    }

    #[test]
    fn documented_topics_parse_in_w_and_wh() {
        assert_eq!(p("relay/0", b"on"), Ok(Push::Relay { n: 0, on: true }));
        assert_eq!(
            p("relay/0", b"overpower"),
            Ok(Push::Relay { n: 0, on: false })
        );
        assert_eq!(
            p("relay/0/power", b"60.25"),
            Ok(Push::PowerW { n: 0, w: 60.25 })
        );
        assert_eq!(
            p("relay/0/energy", b"6000"),
            Ok(Push::CounterWh { n: 0, wh: 100.0 })
        );
        assert_eq!(
            p("emeter/1/power", b"-512.5"),
            Ok(Push::Emeter {
                i: 1,
                field: EmeterField::PowerW(-512.5)
            })
        );
        assert_eq!(
            p("emeter/0/total_returned", b"12.5"),
            Ok(Push::Emeter {
                i: 0,
                field: EmeterField::ReturnedWh(12.5)
            })
        );
        assert_eq!(p("online", b"false"), Ok(Push::Online(false)));
        assert_eq!(p("announce", br#"{"id":"x"}"#), Ok(Push::Announce));
        assert_eq!(
            p("relay/0/command", b"on"),
            Ok(Push::Other),
            "our own command"
        );
        assert_eq!(p("temperature", b"31.2"), Ok(Push::Other));
        assert_eq!(parse(B, "shellies/other/relay/0", b"on"), Ok(Push::Other));
    }

    #[test]
    fn bad_values_name_the_topic_and_the_expectation() {
        for (suffix, payload, want) in [
            (
                "relay/0/power",
                &b"abc"[..],
                "relay/0/power: expected a number of W within ±100 kW, got `abc`",
            ),
            (
                "relay/0/power",
                b"1e300",
                "relay/0/power: expected a number of W within ±100 kW, got `1e300`",
            ),
            ("relay/0/power", b"NaN", "got `NaN`"),
            (
                "relay/0/energy",
                b"-5",
                "relay/0/energy: expected a number of watt-minutes",
            ),
            (
                "relay/0",
                b"maybe",
                "relay/0: expected on, off or overpower, got `maybe`",
            ),
            ("relay/9", b"on", "relay/9: expected a channel number 0–3"),
            ("online", b"yes", "online: expected true or false"),
            (
                "relay/0/power",
                b"\xff\xfe",
                "relay/0/power: expected UTF-8 text, got invalid UTF-8",
            ),
        ] {
            let e = p(suffix, payload).unwrap_err().to_string();
            assert!(e.starts_with(B) && e.contains(want), "{suffix}: {e}");
        }
    }
}
