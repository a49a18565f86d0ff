//! A simulated Tasmota IR bridge (firmware `tasmota-ir`) that drives the
//! twin's air conditioner, speaking Tasmota's MQTT API.
//!
//! Behaviour follows Tasmota's `IRhvac` command as implemented in
//! `tasmota/tasmota_xdrv_driver/xdrv_05_irremote_full.ino`
//! (`IrRemoteCmndIrHvacJson`, `sendACJsonState`, `IrRemoteCmndResponse`)
//! and IRremoteESP8266's `IRac` string conversions (`strToOpmode`,
//! `strToFanspeed`, `strToBool`, `opmodeToString`, …):
//!
//! - Subscribes `cmnd/<topic>/+`; the command name is matched
//!   case-insensitively, as Tasmota does (`IRhvac`, `IRHVAC`, …). Other
//!   commands get `{"Command":"Unknown"}`.
//! - JSON keys are matched case-insensitively (Tasmota's `JsonParser`).
//!   Every frame carries the whole remote state; absent keys take Tasmota's
//!   defaults: `Power` Off, `Mode` Auto, `Temp` 21, `FanSpeed` Medium,
//!   `Celsius` On, `Model` 1, swings Off, flags Off, `Sleep` −1.
//!   Unrecognised `Mode`/`FanSpeed` strings fall back to Auto without an
//!   error, exactly as `IRac::strToOpmode`/`strToFanspeed` do.
//! - Answers on `stat/<topic>/RESULT`:
//!   - success: `{"IRHVAC":{"Vendor":…,"Model":…,"Command":"Control","Mode":…,"Power":…,"Celsius":…,"Temp":…,"FanSpeed":…,"SwingV":…,"SwingH":…,"Quiet":…,"Turbo":…,"Econo":…,"Light":…,"Filter":…,"Clean":…,"Beep":…,"Sleep":…,"iFeel":"Off"}}`
//!     (`Power` is reported Off whenever `Mode` is Off);
//!   - not a JSON object: `{"IRHVAC":"Invalid JSON"}`;
//!   - missing or unsupported `Vendor`/`Protocol`: `{"IRHVAC":"Wrong Vendor (AIRWELL|AMCOR|…)"}`
//!     listing the supported HVAC protocols;
//!   - empty payload: `{"IRHVAC":"Wrong Vendor, Mode or FanSpeed"}`.
//! - Availability: `tele/<topic>/LWT` = `Online` (retained) on every
//!   connection, last will `Offline` (retained).
//!
//! Simplifications: `Model` is echoed as a number (Tasmota prints a model
//! name for the few protocols that have named models), `Command` is always
//! `Control`, and the mid fan speed `4` is reported as `Med-High`
//! (IRremoteESP8266's `kMedHighStr`; its exact text was not confirmed).
//!
//! Every received `IRhvac` payload (valid or not) is kept in an [`IrLog`]
//! with its sim time, for tests.
//!
//! Fault: [`IrFault::ignore_next`] makes the AC miss the next `n` frames
//! (someone in the beam, a receiver out of sight): Tasmota still transmits
//! and echoes them (logged as usual), the unit does not react.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::plant::SharedPlant;
use super::room::{AcMode, AcSettings};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

const RECONNECT_WALL: Duration = Duration::from_millis(500);

/// HVAC protocols IRremoteESP8266's `IRac::isProtocolSupported` accepts
/// (the `tasmota-ir` build enables them all).
pub const SUPPORTED_VENDORS: &[&str] = &[
    "AIRWELL",
    "AMCOR",
    "ARGO",
    "CARRIER_AC64",
    "COOLIX",
    "CORONA_AC",
    "DAIKIN",
    "DAIKIN128",
    "DAIKIN152",
    "DAIKIN160",
    "DAIKIN176",
    "DAIKIN2",
    "DAIKIN216",
    "DAIKIN64",
    "DELONGHI_AC",
    "ECOCLIM",
    "ELECTRA_AC",
    "FUJITSU_AC",
    "GOODWEATHER",
    "GREE",
    "HAIER_AC",
    "HAIER_AC176",
    "HAIER_AC_YRW02",
    "HITACHI_AC",
    "HITACHI_AC1",
    "HITACHI_AC344",
    "HITACHI_AC424",
    "KELON",
    "KELVINATOR",
    "LG",
    "LG2",
    "MIDEA",
    "MIRAGE",
    "MITSUBISHI_AC",
    "MITSUBISHI112",
    "MITSUBISHI136",
    "MITSUBISHI_HEAVY_88",
    "MITSUBISHI_HEAVY_152",
    "NEOCLIMA",
    "PANASONIC_AC",
    "PANASONIC_AC32",
    "RHOSS",
    "SAMSUNG_AC",
    "SANYO_AC",
    "SANYO_AC88",
    "SHARP_AC",
    "TCL112AC",
    "TECHNIBEL_AC",
    "TECO",
    "TEKNOPOINT",
    "TOSHIBA_AC",
    "TRANSCOLD",
    "TROTEC",
    "TROTEC_3550",
    "TRUMA",
    "VESTEL_AC",
    "VOLTAS",
    "WHIRLPOOL_AC",
];

/// `Mode` of an IRhvac frame (`stdAc::opmode_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvacMode {
    Off,
    Auto,
    Cool,
    Heat,
    Dry,
    Fan,
}

impl HvacMode {
    /// `IRac::strToOpmode`, default Auto.
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "off" | "stop" => HvacMode::Off,
            "cool" | "cooling" => HvacMode::Cool,
            "heat" | "heating" => HvacMode::Heat,
            "dry" | "drying" | "dehumidify" => HvacMode::Dry,
            "fan" | "fan-only" | "fan_only" | "fan only" | "fanonly" => HvacMode::Fan,
            _ => HvacMode::Auto, // "auto", "automatic" and anything unknown
        }
    }

    /// `IRac::opmodeToString` (non-HA spelling).
    fn as_str(self) -> &'static str {
        match self {
            HvacMode::Off => "Off",
            HvacMode::Auto => "Auto",
            HvacMode::Cool => "Cool",
            HvacMode::Heat => "Heat",
            HvacMode::Dry => "Dry",
            HvacMode::Fan => "Fan",
        }
    }
}

/// `FanSpeed` (`stdAc::fanspeed_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanSpeed {
    Auto,
    Min,
    Low,
    Medium,
    MediumHigh,
    High,
    Max,
}

impl FanSpeed {
    /// Tasmota accepts 1–6 (Min … Max) or `IRac::strToFanspeed` strings
    /// (default Auto).
    fn parse(v: &Value) -> Self {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        const BY_NUMBER: [FanSpeed; 6] = [
            FanSpeed::Min,
            FanSpeed::Low,
            FanSpeed::Medium,
            FanSpeed::MediumHigh,
            FanSpeed::High,
            FanSpeed::Max,
        ];
        if let Some(n @ 1..=6) = n {
            return BY_NUMBER[n as usize - 1];
        }
        match v.as_str().unwrap_or("").to_ascii_lowercase().as_str() {
            "min" | "minimum" | "lowest" => FanSpeed::Min,
            "low" | "lo" => FanSpeed::Low,
            "med" | "medium" | "mid" => FanSpeed::Medium,
            "med-high" => FanSpeed::MediumHigh,
            "high" | "hi" => FanSpeed::High,
            "max" | "maximum" | "highest" => FanSpeed::Max,
            _ => FanSpeed::Auto,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            FanSpeed::Auto => "Auto",
            FanSpeed::Min => "Min",
            FanSpeed::Low => "Low",
            FanSpeed::Medium => "Medium",
            FanSpeed::MediumHigh => "Med-High",
            FanSpeed::High => "High",
            FanSpeed::Max => "Max",
        }
    }
}

/// One decoded IRhvac frame: the whole remote state Tasmota would transmit.
#[derive(Debug, Clone, PartialEq)]
pub struct IrHvac {
    /// Canonical protocol name (`MITSUBISHI_AC`).
    pub vendor: &'static str,
    pub model: i64,
    pub power: bool,
    pub mode: HvacMode,
    pub celsius: bool,
    /// Set point in the unit `celsius` says.
    pub temp: f64,
    pub fan_speed: FanSpeed,
    pub swing_v: &'static str,
    pub swing_h: &'static str,
    pub quiet: bool,
    pub turbo: bool,
    pub econo: bool,
    pub light: bool,
    pub filter: bool,
    pub clean: bool,
    pub beep: bool,
    pub sleep: i64,
}

/// Why Tasmota refused a frame; each maps to its RESULT text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrHvacError {
    /// Empty payload (`IE_SYNTAX_IRHVAC`).
    Syntax,
    /// Not a JSON object (`IE_INVALID_JSON`).
    InvalidJson,
    /// No or unsupported vendor (`IE_UNSUPPORTED_HVAC`).
    WrongVendor,
}

impl IrHvacError {
    /// The `stat/<topic>/RESULT` payload.
    pub fn result_json(self) -> Value {
        let text = match self {
            IrHvacError::Syntax => "Wrong Vendor, Mode or FanSpeed".to_string(),
            IrHvacError::InvalidJson => "Invalid JSON".to_string(),
            IrHvacError::WrongVendor => format!("Wrong Vendor ({})", SUPPORTED_VENDORS.join("|")),
        };
        json!({ "IRHVAC": text })
    }
}

/// Case-insensitive key lookup (Tasmota's `JsonParserObject[]`).
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Tasmota's `strToBool`: bools and numbers as such; strings via
/// `IRac::strToBool` (on/1/yes/true → true, else false); otherwise `def`.
fn to_bool(v: Option<&Value>, def: bool) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|x| x != 0.0),
        Some(Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "on" | "1" | "yes" | "true")
        }
        _ => def,
    }
}

fn to_f64(v: Option<&Value>, def: f64) -> f64 {
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(def),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(def),
        _ => def,
    }
}

fn to_i64(v: Option<&Value>, def: i64) -> i64 {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|x| x as i64))
            .unwrap_or(def),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(def),
        _ => def,
    }
}

/// `IRac::strToSwingV`, default Off.
fn swing_v(v: Option<&Value>) -> &'static str {
    match v
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "auto" | "automatic" | "on" | "swing" => "Auto",
        "min" | "minimum" | "lowest" | "bottom" | "down" => "Lowest",
        "low" => "Low",
        "mid" | "middle" | "med" | "medium" | "centre" => "Middle",
        "high" | "hi" => "High",
        "highest" | "max" | "maximum" | "top" | "up" => "Highest",
        _ => "Off",
    }
}

/// `IRac::strToSwingH`, default Off.
fn swing_h(v: Option<&Value>) -> &'static str {
    match v
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase()
        .as_str()
    {
        "auto" | "automatic" | "on" | "swing" => "Auto",
        "leftmax" | "left max" | "maxleft" | "max left" => "Left Max",
        "left" => "Left",
        "mid" | "middle" | "med" | "medium" | "centre" => "Middle",
        "right" => "Right",
        "rightmax" | "right max" | "maxright" | "max right" => "Right Max",
        "wide" => "Wide",
        _ => "Off",
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "On" } else { "Off" }
}

/// Decodes an `IRhvac` payload the way Tasmota does.
pub fn parse_irhvac(payload: &[u8]) -> Result<IrHvac, IrHvacError> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Err(IrHvacError::Syntax);
    }
    let root: Map<String, Value> = match serde_json::from_slice(payload) {
        Ok(Value::Object(m)) => m,
        _ => return Err(IrHvacError::InvalidJson),
    };
    // `Protocol` is an alias of `Vendor` and wins when both are present.
    let vendor_name = get(&root, "Protocol")
        .or_else(|| get(&root, "Vendor"))
        .and_then(Value::as_str)
        .ok_or(IrHvacError::WrongVendor)?;
    let vendor = SUPPORTED_VENDORS
        .iter()
        .copied()
        .find(|v| v.eq_ignore_ascii_case(vendor_name.trim()))
        .ok_or(IrHvacError::WrongVendor)?;
    // `IRac::strToModel`: a number > 0, else −1; absent: 1.
    let model = match get(&root, "Model") {
        None => 1,
        Some(v) => match to_i64(Some(v), -1) {
            n if n > 0 => n,
            _ => -1,
        },
    };
    Ok(IrHvac {
        vendor,
        model,
        power: to_bool(get(&root, "Power"), false),
        mode: get(&root, "Mode")
            .map(|v| HvacMode::parse(v.as_str().unwrap_or("")))
            .unwrap_or(HvacMode::Auto),
        celsius: to_bool(get(&root, "Celsius"), true),
        temp: to_f64(get(&root, "Temp"), 21.0),
        fan_speed: get(&root, "FanSpeed")
            .map(FanSpeed::parse)
            .unwrap_or(FanSpeed::Medium),
        swing_v: swing_v(get(&root, "SwingV")),
        swing_h: swing_h(get(&root, "SwingH")),
        quiet: to_bool(get(&root, "Quiet"), false),
        turbo: to_bool(get(&root, "Turbo"), false),
        econo: to_bool(get(&root, "Econo"), false),
        light: to_bool(get(&root, "Light"), false),
        filter: to_bool(get(&root, "Filter"), false),
        clean: to_bool(get(&root, "Clean"), false),
        beep: to_bool(get(&root, "Beep"), false),
        sleep: to_i64(get(&root, "Sleep"), -1),
    })
}

impl IrHvac {
    /// Whether the unit ends up on: Tasmota reports Power Off in mode Off.
    pub fn is_on(&self) -> bool {
        self.power && self.mode != HvacMode::Off
    }

    /// Set point in °C.
    pub fn temp_c(&self) -> f64 {
        if self.celsius {
            self.temp
        } else {
            (self.temp - 32.0) * 5.0 / 9.0
        }
    }

    /// The `stat/<topic>/RESULT` payload text, keys in `sendACJsonState`'s
    /// order (serde_json's `Map` would sort them).
    pub fn result_payload(&self) -> String {
        // `%-1_f`: whole numbers print without decimals.
        let temp = if self.temp.fract() == 0.0 && self.temp.abs() < 1e15 {
            json!(self.temp as i64)
        } else {
            json!(self.temp)
        };
        let fields: [(&str, Value); 19] = [
            ("Vendor", json!(self.vendor)),
            ("Model", json!(self.model)),
            ("Command", json!("Control")),
            ("Mode", json!(self.mode.as_str())),
            ("Power", json!(on_off(self.is_on()))),
            ("Celsius", json!(on_off(self.celsius))),
            ("Temp", temp),
            ("FanSpeed", json!(self.fan_speed.as_str())),
            ("SwingV", json!(self.swing_v)),
            ("SwingH", json!(self.swing_h)),
            ("Quiet", json!(on_off(self.quiet))),
            ("Turbo", json!(on_off(self.turbo))),
            ("Econo", json!(on_off(self.econo))),
            ("Light", json!(on_off(self.light))),
            ("Filter", json!(on_off(self.filter))),
            ("Clean", json!(on_off(self.clean))),
            ("Beep", json!(on_off(self.beep))),
            ("Sleep", json!(self.sleep)),
            ("iFeel", json!("Off")),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
            .collect();
        format!("{{\"IRHVAC\":{{{}}}}}", body.join(","))
    }

    /// [`result_payload`](Self::result_payload) as JSON.
    pub fn result_json(&self) -> Value {
        serde_json::from_str(&self.result_payload()).unwrap_or(Value::Null)
    }

    /// What the AC receives. Mode Off keeps the previous mode with power
    /// off (the unit remembers its mode across power-off).
    pub fn ac_settings(&self, previous_mode: AcMode) -> AcSettings {
        let mode = match self.mode {
            HvacMode::Off => previous_mode,
            HvacMode::Auto => AcMode::Auto,
            HvacMode::Cool => AcMode::Cool,
            HvacMode::Heat => AcMode::Heat,
            HvacMode::Dry => AcMode::Dry,
            HvacMode::Fan => AcMode::Fan,
        };
        AcSettings {
            power: self.is_on(),
            mode,
            set_temp_c: self.temp_c(),
            fan_speed: self.fan_speed.as_str().to_string(),
        }
    }
}

/// Every `IRhvac` payload received: (sim ms, payload as JSON, or as a JSON
/// string when it was not JSON). Cheap to clone; shared with the twin handle.
#[derive(Debug, Clone, Default)]
pub struct IrLog(Arc<Mutex<Vec<(i64, Value)>>>);

impl IrLog {
    pub fn push(&self, sim_ms: i64, payload: Value) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((sim_ms, payload));
    }

    pub fn all(&self) -> Vec<(i64, Value)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn last(&self) -> Option<(i64, Value)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }
}

/// Frames the AC will not react to. Cheap to clone; shared with the twin
/// handle.
#[derive(Debug, Clone, Default)]
pub struct IrFault {
    /// Frames still to miss; `u32::MAX`: every frame.
    pending: Arc<AtomicU32>,
    missed: Arc<AtomicU64>,
}

impl IrFault {
    /// The AC misses the next `n` IR frames (`u32::MAX`: all of them until
    /// set again; 0: none).
    pub fn ignore_next(&self, n: u32) {
        self.pending.store(n, Ordering::SeqCst);
    }

    /// Frames the AC missed so far.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::SeqCst)
    }

    /// Whether the AC misses this frame (counts it down).
    fn miss(&self) -> bool {
        let missed = self
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            })
            .is_ok();
        if missed {
            self.missed.fetch_add(1, Ordering::SeqCst);
        }
        missed
    }
}

#[derive(Debug, Clone)]
pub struct TasmotaSimConfig {
    /// Tasmota's `Topic` (`tasmota_ir`).
    pub topic: String,
    /// MQTT client id (Tasmota's default is `DVES_<chip id>`).
    pub client_id: String,
}

/// Connects the IR bridge and runs it until shutdown.
pub fn spawn(
    clock: Clock,
    broker: &crate::broker::BrokerAddress,
    cfg: TasmotaSimConfig,
    plant: SharedPlant,
    log: IrLog,
    fault: IrFault,
    shutdown: Shutdown,
) -> anyhow::Result<JoinHandle<()>> {
    let lwt = format!("tele/{}/LWT", cfg.topic);
    let mut opts = crate::broker::client::options(&cfg.client_id, broker)?;
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_last_will(LastWill::new(&lwt, "Offline", QoS::AtLeastOnce, true));
    let (client, eventloop) = AsyncClient::new(opts, 64);
    Ok(tokio::spawn(run(
        clock,
        cfg,
        (client, eventloop),
        plant,
        (log, fault),
        shutdown,
    )))
}

async fn run(
    clock: Clock,
    cfg: TasmotaSimConfig,
    (client, mut eventloop): (AsyncClient, rumqttc::EventLoop),
    plant: SharedPlant,
    (log, fault): (IrLog, IrFault),
    mut shutdown: Shutdown,
) {
    let cmnd_prefix = format!("cmnd/{}/", cfg.topic);
    let result_topic = format!("stat/{}/RESULT", cfg.topic);
    let lwt = format!("tele/{}/LWT", cfg.topic);
    let name = &cfg.topic;
    let mut failures = 0u32;
    loop {
        let ev = tokio::select! {
            _ = shutdown.wait() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if failures > 0 {
                    tracing::info!(
                        "twin tasmota {name}: reconnected after {failures} failed attempt(s)"
                    );
                }
                failures = 0;
                // Clean session: subscriptions are gone after every reconnect.
                // try_*: awaiting the channel here, inside the poll loop, could deadlock.
                if let Err(e) = client.try_subscribe(format!("{cmnd_prefix}+"), QoS::AtLeastOnce) {
                    tracing::warn!("twin tasmota {name}: cannot subscribe: {e}");
                }
                if let Err(e) = client.try_publish(&lwt, QoS::AtLeastOnce, true, "Online") {
                    tracing::warn!("twin tasmota {name}: cannot publish LWT: {e}");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(command) = p.topic.strip_prefix(&cmnd_prefix) else {
                    continue;
                };
                let reply = if command.eq_ignore_ascii_case("IRhvac") {
                    handle_irhvac(&clock, &plant, &log, &fault, &p.payload)
                } else {
                    json!({"Command": "Unknown"}).to_string()
                };
                if let Err(e) = client.try_publish(&result_topic, QoS::AtMostOnce, false, reply) {
                    tracing::warn!("twin tasmota {name}: RESULT dropped: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("twin tasmota {name}: MQTT connection lost: {e}; reconnecting");
                }
                failures += 1;
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(RECONNECT_WALL) => {}
                }
            }
        }
    }
    // Dropping the socket without DISCONNECT: the broker sends `Offline`.
}

/// One `IRhvac` command: log it, decode it, drive the AC, build the RESULT.
fn handle_irhvac(
    clock: &Clock,
    plant: &SharedPlant,
    log: &IrLog,
    fault: &IrFault,
    payload: &[u8],
) -> String {
    let now = clock.now_ms();
    let logged = serde_json::from_slice::<Value>(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    log.push(now, logged);
    match parse_irhvac(payload) {
        Ok(cmd) if fault.miss() => {
            tracing::debug!("twin tasmota: the AC missed IR {cmd:?}");
            cmd.result_payload()
        }
        Ok(cmd) => {
            let mut p = plant.lock().unwrap_or_else(|e| e.into_inner());
            let settings = cmd.ac_settings(p.ac.settings().mode);
            tracing::debug!("twin tasmota: IR {settings:?}");
            p.apply_ir(settings, now);
            cmd.result_payload()
        }
        Err(e) => {
            tracing::debug!(
                "twin tasmota: refused IRhvac `{}`: {e:?}",
                String::from_utf8_lossy(payload)
            );
            e.result_json().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_command_decodes_and_echoes_like_tasmota() {
        let cmd = br#"{"Vendor":"MITSUBISHI_AC","Power":"On","Mode":"Cool","Temp":22.5,"FanSpeed":"Auto","Celsius":"On"}"#;
        let s = parse_irhvac(cmd).unwrap();
        assert!(s.is_on());
        assert_eq!(s.mode, HvacMode::Cool);
        assert_eq!(s.temp_c(), 22.5);
        assert_eq!(
            s.result_payload(),
            r#"{"IRHVAC":{"Vendor":"MITSUBISHI_AC","Model":1,"Command":"Control","Mode":"Cool","Power":"On","Celsius":"On","Temp":22.5,"FanSpeed":"Auto","SwingV":"Off","SwingH":"Off","Quiet":"Off","Turbo":"Off","Econo":"Off","Light":"Off","Filter":"Off","Clean":"Off","Beep":"Off","Sleep":-1,"iFeel":"Off"}}"#
        );
        let ac = s.ac_settings(AcMode::Fan);
        assert_eq!(
            ac,
            AcSettings {
                power: true,
                mode: AcMode::Cool,
                set_temp_c: 22.5,
                fan_speed: "Auto".into()
            }
        );
    }

    #[test]
    fn keys_and_values_are_case_insensitive_with_tasmota_defaults() {
        let s = parse_irhvac(
            br#"{"vendor":"daikin","POWER":"on","mode":"COOLING","temp":24,"model":-1}"#,
        )
        .unwrap();
        assert_eq!(s.vendor, "DAIKIN");
        assert_eq!(s.model, -1);
        assert_eq!(s.fan_speed, FanSpeed::Medium, "absent FanSpeed: Medium");
        let r = s.result_json();
        assert_eq!(
            r["IRHVAC"]["Temp"],
            json!(24),
            "whole degrees print without decimals"
        );
        assert_eq!(r["IRHVAC"]["Model"], json!(-1));
        assert_eq!(r["IRHVAC"]["Mode"], "Cool");

        // No Power key: Tasmota starts from power off. Unknown mode: Auto.
        let s = parse_irhvac(br#"{"Vendor":"GREE","Mode":"Turbo","FanSpeed":3}"#).unwrap();
        assert!(!s.power);
        assert_eq!(s.mode, HvacMode::Auto);
        assert_eq!(s.fan_speed, FanSpeed::Medium);
        assert_eq!(s.temp, 21.0);
    }

    #[test]
    fn mode_off_reports_power_off_and_keeps_the_previous_mode() {
        let s = parse_irhvac(br#"{"Vendor":"LG","Power":"On","Mode":"Off","Temp":25}"#).unwrap();
        assert!(!s.is_on());
        assert_eq!(s.result_json()["IRHVAC"]["Power"], "Off");
        let ac = s.ac_settings(AcMode::Cool);
        assert!(!ac.power);
        assert_eq!(ac.mode, AcMode::Cool);
    }

    #[test]
    fn fahrenheit_set_points_are_converted() {
        let s =
            parse_irhvac(br#"{"Vendor":"LG","Power":1,"Mode":"Cool","Celsius":"Off","Temp":77}"#)
                .unwrap();
        assert!(s.power);
        assert!((s.temp_c() - 25.0).abs() < 1e-9);
        assert_eq!(s.result_json()["IRHVAC"]["Celsius"], "Off");
    }

    #[test]
    fn errors_use_tasmota_texts() {
        assert_eq!(parse_irhvac(b"{not json"), Err(IrHvacError::InvalidJson));
        assert_eq!(parse_irhvac(b"[1,2]"), Err(IrHvacError::InvalidJson));
        assert_eq!(parse_irhvac(b""), Err(IrHvacError::Syntax));
        assert_eq!(
            parse_irhvac(br#"{"Power":"On"}"#),
            Err(IrHvacError::WrongVendor)
        );
        assert_eq!(
            parse_irhvac(br#"{"Vendor":"ACME"}"#),
            Err(IrHvacError::WrongVendor)
        );
        assert_eq!(
            parse_irhvac(br#"{"Vendor":42}"#),
            Err(IrHvacError::WrongVendor)
        );

        assert_eq!(
            IrHvacError::InvalidJson.result_json(),
            json!({"IRHVAC":"Invalid JSON"})
        );
        assert_eq!(
            IrHvacError::Syntax.result_json(),
            json!({"IRHVAC":"Wrong Vendor, Mode or FanSpeed"})
        );
        let wrong = IrHvacError::WrongVendor.result_json();
        let text = wrong["IRHVAC"].as_str().unwrap();
        assert!(text.starts_with("Wrong Vendor (AIRWELL|AMCOR|"), "{text}");
        assert!(text.contains("|MITSUBISHI_AC|"));
    }

    #[test]
    fn the_fault_misses_the_next_frames_then_none_or_all() {
        let f = IrFault::default();
        assert!(!f.miss());
        f.ignore_next(2);
        assert!(f.miss() && f.miss() && !f.miss());
        f.ignore_next(u32::MAX);
        assert!((0..100).all(|_| f.miss()));
        f.ignore_next(0);
        assert!(!f.miss());
        assert_eq!(f.missed(), 102);
    }

    #[test]
    fn ir_log_keeps_order() {
        let log = IrLog::default();
        log.push(1, json!({"a":1}));
        log.push(2, json!("raw"));
        assert_eq!(log.count(), 2);
        assert_eq!(log.last(), Some((2, json!("raw"))));
        assert_eq!(log.all()[0].0, 1);
    }
}
