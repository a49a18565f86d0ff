//! SmartIR climate code files (github.com/smartHomeHub/SmartIR,
//! `codes/climate/*.json`, MIT): the IR codes of one air conditioner's
//! remote, learnt with a Broadlink.
//!
//! Shape read here:
//! ```json
//! { "manufacturer": "Midea", "supportedModels": ["…"],
//!   "supportedController": "Broadlink", "commandsEncoding": "Base64",
//!   "minTemperature": 18.0, "maxTemperature": 28.0, "precision": 1.0,
//!   "operationModes": ["heat", "cool"], "fanModes": ["low", "mid", "high"],
//!   "commands": { "off": "<base64>",
//!                 "cool": { "low": { "18": "<base64>", … }, … }, … } }
//! ```
//! Modes are Home Assistant's hvac modes (`cool`, `heat`, `dry`,
//! `fan_only`, `heat_cool`, `auto`); temperatures are °C, keys of
//! `commands[mode][fan]` from `minTemperature` to `maxTemperature` in steps
//! of `precision`. A code is the base64 of a Broadlink IR packet
//! (`0x26 …`), transmitted as it is with `send_data`.
//!
//! Refused, with the file and the key named: another controller or
//! encoding, a missing or mistyped key, a mode × fan × temperature without
//! its code, swing levels (`commands[mode][fan][swing][temp]`, not
//! supported), base64 that does not decode.

use base64::Engine;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// What an IR code means (the reverse lookup the twin uses).
#[derive(Debug, Clone, PartialEq)]
pub enum IrMeaning {
    Off,
    Set {
        mode: String,
        fan: String,
        /// °C
        temp: f64,
    },
}

/// One loaded code file.
#[derive(Debug, Clone)]
pub struct SmartIrCodes {
    /// Where it came from, for messages.
    pub origin: String,
    pub manufacturer: String,
    pub models: Vec<String>,
    /// °C
    pub min_temp: f64,
    /// °C
    pub max_temp: f64,
    /// °C step between codes.
    pub precision: f64,
    pub modes: Vec<String>,
    pub fan_modes: Vec<String>,
    off: Vec<u8>,
    /// (mode, fan, tenths of °C) → IR packet.
    codes: HashMap<(String, String, i64), Vec<u8>>,
    reverse: HashMap<Vec<u8>, IrMeaning>,
}

fn tenths(t: f64) -> i64 {
    (t * 10.0).round() as i64
}

/// Largest code file read (SmartIR's biggest climate files are ~300 KiB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

impl SmartIrCodes {
    /// Reads and parses a code file: a regular file of at most
    /// [`MAX_FILE_BYTES`] (a device node such as `/dev/zero` or a FIFO is
    /// refused before reading, and no more than the cap is ever read).
    /// Blocking: from async code use [`Self::load_async`].
    pub fn load(path: &Path) -> Result<Self, String> {
        use std::io::Read;
        let fail = |what: String| format!("SmartIR code file {}: {what}", path.display());
        let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
        if !meta.is_file() {
            return Err(fail("not a regular file".into()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(format!(
                "{} bytes, more than the {MAX_FILE_BYTES} a code file may have",
                meta.len()
            )));
        }
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| fail(e.to_string()))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(format!(
                "grew past the {MAX_FILE_BYTES} bytes a code file may have while read"
            )));
        }
        Self::parse(&text, &path.display().to_string())
    }

    /// [`Self::load`] on the blocking pool (not on the async runtime).
    pub async fn load_async(path: std::path::PathBuf) -> Result<Self, String> {
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || Self::load(&path))
            .await
            .map_err(|e| format!("SmartIR code file {shown}: reading it failed: {e}"))?
    }

    /// Parses a file's text; errors start with `SmartIR code file <origin>`.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let fail = |what: String| format!("SmartIR code file {origin}: {what}");
        let root: Value =
            serde_json::from_str(text).map_err(|e| fail(format!("not valid JSON: {e}")))?;
        let root = root
            .as_object()
            .ok_or_else(|| fail("expected a JSON object".into()))?;
        let string = |key: &str| -> Result<String, String> {
            match root.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(fail(format!("`{key}` must be a string, got {other}"))),
                None => Err(fail(format!("missing key `{key}`"))),
            }
        };
        let number = |key: &str| -> Result<f64, String> {
            match root.get(key) {
                Some(v) => v
                    .as_f64()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| fail(format!("`{key}` must be a number, got {v}"))),
                None => Err(fail(format!("missing key `{key}`"))),
            }
        };
        let strings = |key: &str| -> Result<Vec<String>, String> {
            let list = root
                .get(key)
                .ok_or_else(|| fail(format!("missing key `{key}`")))?
                .as_array()
                .ok_or_else(|| fail(format!("`{key}` must be a list of strings")))?;
            let out: Vec<String> = list
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| fail(format!("`{key}` must be a list of strings")))?;
            if out.is_empty() {
                return Err(fail(format!("`{key}` is empty")));
            }
            Ok(out)
        };
        let controller = string("supportedController")?;
        if controller != "Broadlink" {
            return Err(fail(format!(
                "`supportedController` is `{controller}`, this driver sends Broadlink codes"
            )));
        }
        let encoding = string("commandsEncoding")?;
        if encoding != "Base64" {
            return Err(fail(format!(
                "`commandsEncoding` is `{encoding}`, expected `Base64`"
            )));
        }
        let (min_temp, max_temp) = (number("minTemperature")?, number("maxTemperature")?);
        let precision = match root.get("precision") {
            None => 1.0,
            Some(_) => number("precision")?,
        };
        if !(min_temp <= max_temp && precision > 0.0) {
            return Err(fail(format!(
                "need minTemperature ≤ maxTemperature and precision > 0, got {min_temp}, {max_temp}, {precision}"
            )));
        }
        let modes = strings("operationModes")?;
        let fan_modes = strings("fanModes")?;
        let commands = root
            .get("commands")
            .ok_or_else(|| fail("missing key `commands`".into()))?
            .as_object()
            .ok_or_else(|| fail("`commands` must be an object".into()))?;
        let decode = |key: &str, v: Option<&Value>| -> Result<Vec<u8>, String> {
            let s = v
                .ok_or_else(|| fail(format!("missing key `{key}`")))?
                .as_str()
                .ok_or_else(|| fail(format!("`{key}` must be a base64 string")))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| fail(format!("`{key}` is not valid base64: {e}")))?;
            if bytes.len() < 4 {
                return Err(fail(format!(
                    "`{key}` is too short for a Broadlink IR packet"
                )));
            }
            if bytes.len() > super::protocol::MAX_IR_CODE {
                return Err(fail(format!(
                    "`{key}` is {} bytes, longer than the {} an RM4 command carries",
                    bytes.len(),
                    super::protocol::MAX_IR_CODE
                )));
            }
            Ok(bytes)
        };
        let off = decode("commands.off", commands.get("off"))?;
        let object = |key: String, v: Option<&Value>| -> Result<Map<String, Value>, String> {
            match v {
                Some(Value::Object(m)) => Ok(m.clone()),
                Some(_) => Err(fail(format!("`{key}` must be an object"))),
                None => Err(fail(format!("missing key `{key}`"))),
            }
        };
        let mut codes = HashMap::new();
        let mut reverse = HashMap::new();
        reverse.insert(off.clone(), IrMeaning::Off);
        let steps = ((max_temp - min_temp) / precision).round() as i64;
        if steps > 1000 {
            return Err(fail(format!(
                "{steps} temperature steps between minTemperature and maxTemperature"
            )));
        }
        for mode in &modes {
            let by_fan = object(format!("commands.{mode}"), commands.get(mode))?;
            for fan in &fan_modes {
                let key = format!("commands.{mode}.{fan}");
                let by_temp = object(key.clone(), by_fan.get(fan))?;
                if by_temp.values().any(Value::is_object) {
                    return Err(fail(format!(
                        "`{key}` holds swing levels (commands[mode][fan][swing][temp]); not supported"
                    )));
                }
                let by_tenths: HashMap<i64, &Value> = by_temp
                    .iter()
                    .filter_map(|(k, v)| k.trim().parse::<f64>().ok().map(|t| (tenths(t), v)))
                    .collect();
                for i in 0..=steps {
                    let t = min_temp + i as f64 * precision;
                    let name = format!("{key}.{}", temp_key(t));
                    let code = decode(&name, by_tenths.get(&tenths(t)).copied())?;
                    reverse.entry(code.clone()).or_insert(IrMeaning::Set {
                        mode: mode.clone(),
                        fan: fan.clone(),
                        temp: t,
                    });
                    codes.insert((mode.clone(), fan.clone(), tenths(t)), code);
                }
            }
        }
        Ok(SmartIrCodes {
            origin: origin.into(),
            manufacturer: string("manufacturer").unwrap_or_default(),
            models: strings("supportedModels").unwrap_or_default(),
            min_temp,
            max_temp,
            precision,
            modes,
            fan_modes,
            off,
            codes,
            reverse,
        })
    }

    /// The code that switches the AC off.
    pub fn off(&self) -> &[u8] {
        &self.off
    }

    /// `t` rounded to the file's step and range, °C.
    pub fn snap(&self, t: f64) -> f64 {
        let steps = ((t - self.min_temp) / self.precision).round();
        (self.min_temp + steps * self.precision).clamp(self.min_temp, self.max_temp)
    }

    /// The code for `mode`, `fan` and `temp` (snapped to the file's step).
    pub fn code(&self, mode: &str, fan: &str, temp: f64) -> Result<&[u8], String> {
        let t = self.snap(temp);
        self.codes
            .get(&(mode.to_string(), fan.to_string(), tenths(t)))
            .map(Vec::as_slice)
            .ok_or_else(|| {
                format!(
                    "SmartIR code file {}: no code for mode `{mode}`, fan `{fan}`, {} °C",
                    self.origin,
                    temp_key(t)
                )
            })
    }

    /// What a received IR packet means, if it is one of this file's.
    pub fn lookup(&self, ir: &[u8]) -> Option<&IrMeaning> {
        self.reverse.get(ir)
    }
}

/// A temperature as SmartIR writes its keys: `18`, `18.5`.
pub fn temp_key(t: f64) -> String {
    if t.fract() == 0.0 {
        format!("{t:.0}")
    } else {
        format!("{t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/ir-codes/smartir-climate-1381.json"
    );

    #[test]
    fn loads_the_vendored_file_and_reverses_its_codes() {
        let c = SmartIrCodes::load(Path::new(SAMPLE)).unwrap();
        assert_eq!(c.modes, ["heat", "cool"]);
        assert_eq!(c.fan_modes, ["low", "mid", "high"]);
        assert_eq!((c.min_temp, c.max_temp), (18.0, 28.0));
        let code = c.code("cool", "mid", 22.4).unwrap().to_vec();
        assert_eq!(code[0], 0x26, "a Broadlink IR packet");
        assert_eq!(
            c.lookup(&code),
            Some(&IrMeaning::Set {
                mode: "cool".into(),
                fan: "mid".into(),
                temp: 22.0
            })
        );
        assert_eq!(c.lookup(c.off()), Some(&IrMeaning::Off));
        assert!(c.code("dry", "mid", 22.0).is_err());
    }

    #[test]
    fn only_a_regular_file_of_at_most_1_mib_is_read() {
        let e = SmartIrCodes::load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.ends_with("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        let e = SmartIrCodes::load(&big).unwrap_err();
        assert!(e.contains("more than the 1048576"), "{e}");
    }

    #[test]
    fn a_code_longer_than_an_rm4_command_carries_is_refused() {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let huge = base64::engine::general_purpose::STANDARD.encode(vec![0x26u8; 70_000]);
        v["commands"]["off"] = Value::String(huge);
        let e = SmartIrCodes::parse(&v.to_string(), "x.json").unwrap_err();
        assert!(
            e.contains("`commands.off` is 70000 bytes, longer than"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_key_is_named() {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["commands"]["cool"]["mid"]
            .as_object_mut()
            .unwrap()
            .remove("23");
        let e = SmartIrCodes::parse(&v.to_string(), "x.json").unwrap_err();
        assert_eq!(
            e,
            "SmartIR code file x.json: missing key `commands.cool.mid.23`"
        );
        v["supportedController"] = "Xiaomi".into();
        let e = SmartIrCodes::parse(&v.to_string(), "x.json").unwrap_err();
        assert!(e.contains("`supportedController` is `Xiaomi`"), "{e}");
    }
}
