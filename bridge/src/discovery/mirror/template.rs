//! The subset of Home Assistant's Jinja `value_template` that mirrored
//! discovery configs may use (HA docs, "MQTT: Using templates"; filters as
//! HA's template engine defines them, homeassistant/helpers/template):
//!
//! - `{{ value }}`: the payload as text;
//! - `{{ value_json.key }}`, `{{ value_json['key'] }}`, `{{ value_json["key"] }}`,
//!   `{{ value_json.list[0] }}`, nested to any depth;
//! - filters, chained: `| float`, `| float(d)`, `| int`, `| int(d)`,
//!   `| round`, `| round(n)`, `| default(x)` (`x` a number or a quoted string).
//!
//! Anything else (statements, arithmetic, other filters, text around the
//! expression) is refused when the config is read, so the mirror never
//! guesses what a template meant.

use serde_json::Value;
use std::fmt;

/// A parsed `value_template`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// `None`: `value`; `Some(path)`: `value_json` then these keys.
    json_path: Option<Vec<Key>>,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
enum Key {
    Name(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Float(Option<Lit>),
    Int(Option<Lit>),
    Round(u32),
    Default(Lit),
}

/// A literal argument: Jinja number or string.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Num(f64),
    Str(String),
}

/// A value while filters run (Jinja's types, as far as the subset needs).
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Undefined,
    Json(Value),
    Text(String),
    Float(f64),
    Int(i64),
}

/// Why a payload could not be rendered (the entity keeps its last state).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderError(pub String);

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Template {
    /// `{{ value }}`: the payload unchanged (HA's default when no template).
    pub fn identity() -> Self {
        Template {
            json_path: None,
            filters: Vec::new(),
        }
    }

    /// Parses a template of the supported subset; the error says what was
    /// not understood.
    pub fn parse(src: &str) -> Result<Template, String> {
        let s = src.trim();
        let inner = s
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .filter(|i| !i.contains("{{") && !i.contains("}}") && !i.contains("{%"))
            .ok_or("expected exactly one `{{ … }}` expression and nothing around it")?;
        let mut parts = split_pipes(inner)?.into_iter();
        let base = parts.next().unwrap_or_default();
        let json_path = parse_base(base.trim())?;
        let filters = parts
            .map(|f| parse_filter(f.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Template { json_path, filters })
    }

    /// Renders the template for one payload into HA's state string.
    pub fn render(&self, payload: &str) -> Result<String, RenderError> {
        let mut v = match &self.json_path {
            None => Val::Text(payload.to_string()),
            Some(path) => {
                let root: Value = serde_json::from_str(payload).map_err(|_| {
                    RenderError("`value_json` used but the payload is not JSON".into())
                })?;
                let mut cur = Some(&root);
                for k in path {
                    cur = cur.and_then(|c| match k {
                        Key::Name(n) => c.get(n.as_str()),
                        Key::Index(i) => c.get(*i),
                    });
                }
                cur.map_or(Val::Undefined, |c| Val::Json(c.clone()))
            }
        };
        for f in &self.filters {
            v = apply(f, v)?;
        }
        match v {
            Val::Undefined => Err(RenderError(
                "the key is not in the payload (add `| default(…)`)".into(),
            )),
            other => Ok(show(&other)),
        }
    }
}

/// Splits on `|` outside quotes.
fn split_pipes(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '|') => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("unterminated string".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

fn parse_base(s: &str) -> Result<Option<Vec<Key>>, String> {
    if s == "value" {
        return Ok(None);
    }
    let mut rest = s
        .strip_prefix("value_json")
        .ok_or_else(|| format!("`{s}`: expected `value` or `value_json…`"))?;
    let mut path = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("`{s}`: expected a key name after `.`"));
            }
            path.push(Key::Name(name.into()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
            let inner = r[..end].trim();
            path.push(match unquote(inner) {
                Some(k) => Key::Name(k),
                None => {
                    Key::Index(inner.parse().map_err(|_| {
                        format!("`{s}`: `[{inner}]` is not a quoted key or an index")
                    })?)
                }
            });
            rest = &r[end + 1..];
        } else {
            return Err(format!("`{s}`: unexpected `{rest}`"));
        }
    }
    Ok(Some(path))
}

fn unquote(s: &str) -> Option<String> {
    ['\'', '"'].into_iter().find_map(|q| {
        s.strip_prefix(q)
            .and_then(|r| r.strip_suffix(q))
            .filter(|r| !r.contains(q))
            .map(String::from)
    })
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    let (name, arg) = match s.split_once('(') {
        Some((n, a)) => {
            let a = a
                .strip_suffix(')')
                .ok_or_else(|| format!("filter `{s}`: `(` without `)`"))?
                .trim();
            (n.trim(), (!a.is_empty()).then_some(a))
        }
        None => (s, None),
    };
    let lit = |a: &str| -> Result<Lit, String> {
        if let Some(t) = unquote(a) {
            return Ok(Lit::Str(t));
        }
        a.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Lit::Num)
            .ok_or_else(|| {
                format!("filter `{s}`: argument `{a}` is not a number or a quoted string")
            })
    };
    Ok(match (name, arg) {
        ("float", a) => Filter::Float(a.map(lit).transpose()?),
        ("int", a) => Filter::Int(a.map(lit).transpose()?),
        ("round", None) => Filter::Round(0),
        ("round", Some(a)) => Filter::Round(
            a.parse()
                .ok()
                .filter(|n| *n <= 15)
                .ok_or_else(|| format!("filter `{s}`: expected round(n), n from 0 to 15"))?,
        ),
        ("default", Some(a)) => Filter::Default(lit(a)?),
        _ => {
            return Err(format!(
                "filter `{s}` is not supported (float, int, round(n), default(x))"
            ));
        }
    })
}

fn lit_val(l: &Lit) -> Val {
    match l {
        Lit::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => Val::Int(*n as i64),
        Lit::Num(n) => Val::Float(*n),
        Lit::Str(s) => Val::Text(s.clone()),
    }
}

fn as_number(v: &Val) -> Option<f64> {
    match v {
        Val::Float(f) => Some(*f),
        Val::Int(i) => Some(*i as f64),
        Val::Text(t) => t.trim().parse::<f64>().ok(),
        Val::Json(Value::Number(n)) => n.as_f64(),
        Val::Json(Value::String(t)) => t.trim().parse::<f64>().ok(),
        Val::Json(Value::Bool(b)) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

fn apply(f: &Filter, v: Val) -> Result<Val, RenderError> {
    let fail = |what: &str| RenderError(format!("{what}: `{}` is not a number", show(&v)));
    Ok(match f {
        Filter::Default(d) => match v {
            Val::Undefined => lit_val(d),
            other => other,
        },
        Filter::Float(d) => match (as_number(&v), d) {
            (Some(n), _) => Val::Float(n),
            (None, Some(d)) => lit_val(d),
            (None, None) => return Err(fail("float")),
        },
        Filter::Int(d) => match (as_number(&v), d) {
            (Some(n), _) => Val::Int(n.trunc() as i64),
            (None, Some(d)) => lit_val(d),
            (None, None) => return Err(fail("int")),
        },
        Filter::Round(n) => match as_number(&v) {
            Some(x) => {
                let p = 10f64.powi(*n as i32);
                Val::Float((x * p).round() / p)
            }
            None => return Err(fail("round")),
        },
    })
}

/// How Jinja prints a value (Python's `str`): `87.0` for a float, `87`
/// for an int, JSON strings without quotes, `True`/`False`.
fn show(v: &Val) -> String {
    match v {
        Val::Undefined => String::new(),
        Val::Text(t) => t.clone(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => py_float(*f),
        Val::Json(Value::String(s)) => s.clone(),
        Val::Json(Value::Bool(b)) => if *b { "True" } else { "False" }.into(),
        Val::Json(Value::Null) => "None".into(),
        Val::Json(Value::Number(n)) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map_or_else(|| n.to_string(), py_float),
        },
        Val::Json(other) => other.to_string(),
    }
}

fn py_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, payload: &str) -> Result<String, RenderError> {
        Template::parse(t).unwrap().render(payload)
    }

    #[test]
    fn value_and_value_json_paths() {
        assert_eq!(render("{{ value }}", "87").unwrap(), "87");
        assert_eq!(render("{{value}}", " 87 ").unwrap(), " 87 ");
        assert_eq!(
            render("{{ value_json.battery }}", r#"{"battery":87}"#).unwrap(),
            "87"
        );
        assert_eq!(
            render("{{ value_json['battery'] }}", r#"{"battery":87.5}"#).unwrap(),
            "87.5"
        );
        assert_eq!(
            render(
                r#"{{ value_json.power["level"] }}"#,
                r#"{"power":{"level":"42"}}"#
            )
            .unwrap(),
            "42"
        );
        assert_eq!(
            render(
                "{{ value_json.cells[1].v }}",
                r#"{"cells":[{"v":1},{"v":2}]}"#
            )
            .unwrap(),
            "2"
        );
        assert_eq!(
            render(
                "{{ value_json['key with space'] }}",
                r#"{"key with space":"x"}"#
            )
            .unwrap(),
            "x"
        );
    }

    #[test]
    fn filters_follow_jinja() {
        assert_eq!(render("{{ value | float }}", "87").unwrap(), "87.0");
        assert_eq!(render("{{ value | int }}", "87.9").unwrap(), "87");
        assert_eq!(
            render("{{ value | float | round(1) }}", "87.46").unwrap(),
            "87.5"
        );
        assert_eq!(render("{{ value | round }}", "87.6").unwrap(), "88.0");
        assert_eq!(render("{{ value | float(0) }}", "n/a").unwrap(), "0");
        assert_eq!(
            render("{{ value_json.b | default(0) | int }}", r#"{"a":1}"#).unwrap(),
            "0"
        );
        assert_eq!(
            render("{{ value_json.b | default('none') }}", r#"{"a":1}"#).unwrap(),
            "none"
        );
        // A pipe inside a quoted default is text, not a filter.
        assert_eq!(
            render("{{ value_json.b | default('a|b') }}", "{}").unwrap(),
            "a|b"
        );
    }

    #[test]
    fn render_errors_name_the_problem() {
        let e = render("{{ value | float }}", "charging").unwrap_err();
        assert!(e.0.contains("`charging` is not a number"), "{e}");
        let e = render("{{ value_json.battery }}", "charging").unwrap_err();
        assert!(e.0.contains("not JSON"), "{e}");
        // `87` is JSON (a number) without the key.
        let e = render("{{ value_json.battery }}", "87").unwrap_err();
        assert!(e.0.contains("not in the payload"), "{e}");
        let e = render("{{ value_json.battery }}", "{}").unwrap_err();
        assert!(e.0.contains("default"), "{e}");
    }

    #[test]
    fn unsupported_templates_are_refused() {
        for t in [
            "{{ value | multiply(2) }}",
            "{{ value_json.a + 1 }}",
            "{% if value %}on{% endif %}",
            "{{ value }}%",
            "battery {{ value }}",
            "{{ states('sensor.x') }}",
            "{{ value_json.a | round(x) }}",
            "{{ value_json[ }}",
            "{{ value_json.a | default('x) }}",
            "{{ value | is_defined }}",
            "",
        ] {
            assert!(Template::parse(t).is_err(), "accepted {t:?}");
        }
    }
}
