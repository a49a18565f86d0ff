//! HA's result typing of a rendered template (`Template._parse_result` in
//! `homeassistant/helpers/template.py`): the text is read as a Python
//! literal (`ast.literal_eval`); a number, a boolean, `None`, a list, a
//! tuple, a set or a dict becomes that value, anything else stays the text.
//! A top-level number counts only when the text looks like one
//! (`^[+-]?(?!0\d)\d*(?:\.\d*)?$`: `3` → 3, `3.0` → 3.0, but `03`, `1e3`
//! and `1_000` stay strings); a literal string stays the original text
//! (quotes included).
//!
//! The values become JSON as HA's encoder writes them: tuples and sets as
//! lists, `None` as null, dict keys as strings.

use serde_json::{Map, Number, Value};

/// How deeply brackets and signs may nest before the text stays a string
/// (Python's parser gives up too: `literal_eval` raises and HA keeps the
/// text). Each level is a recursion of the parser.
pub const MAX_DEPTH: usize = 100;

/// The value `text` (already stripped) renders to, as HA answers it.
pub fn parse_result(text: &str) -> Value {
    match Parser::new(text).whole() {
        Some(Lit::Str(_)) | None => Value::String(text.into()),
        Some(lit @ (Lit::Int(_) | Lit::Float(_))) => {
            if is_numeric(text) {
                lit.json().unwrap_or_else(|| Value::String(text.into()))
            } else {
                Value::String(text.into())
            }
        }
        Some(lit) => lit.json().unwrap_or_else(|| Value::String(text.into())),
    }
}

/// HA's `_IS_NUMERIC`: `^[+-]?(?!0\d)\d*(?:\.\d*)?$`.
fn is_numeric(text: &str) -> bool {
    let t = text.strip_prefix(['+', '-']).unwrap_or(text);
    let b = t.as_bytes();
    if b.len() >= 2 && b[0] == b'0' && b[1].is_ascii_digit() {
        return false;
    }
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    int.bytes().all(|c| c.is_ascii_digit()) && frac.bytes().all(|c| c.is_ascii_digit())
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Int(i128),
    Float(f64),
    Bool(bool),
    None,
    Str(String),
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn json(&self) -> Option<Value> {
        Some(match self {
            Lit::Int(i) => match i64::try_from(*i) {
                Ok(v) => Value::from(v),
                Err(_) => Value::Number(Number::from_f64(*i as f64)?),
            },
            // JSON has no NaN or infinity; HA's encoder would fail too.
            Lit::Float(f) => Value::Number(Number::from_f64(*f)?),
            Lit::Bool(b) => Value::Bool(*b),
            Lit::None => Value::Null,
            Lit::Str(s) => Value::String(s.clone()),
            Lit::List(items) => Value::Array(items.iter().map(Lit::json).collect::<Option<_>>()?),
            Lit::Dict(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    m.insert(k.key()?, v.json()?);
                }
                Value::Object(m)
            }
        })
    }

    /// A dict key as Python's `json.dumps` writes it.
    fn key(&self) -> Option<String> {
        Some(match self {
            Lit::Str(s) => s.clone(),
            Lit::Int(i) => i.to_string(),
            Lit::Float(f) => py_float(*f),
            Lit::Bool(b) => b.to_string(),
            Lit::None => "null".into(),
            Lit::List(_) | Lit::Dict(_) => return None,
        })
    }
}

/// Python's `repr(float)` for the finite values JSON keys need.
pub fn py_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Open `[`, `(`, `{` and signs around the current position.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s: s.as_bytes(),
            i: 0,
            depth: 0,
        }
    }

    fn whole(mut self) -> Option<Lit> {
        let v = self.expr()?;
        self.ws();
        (self.i == self.s.len()).then_some(v)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Lit> {
        if self.depth >= MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let v = self.expr_inner();
        self.depth -= 1;
        v
    }

    fn expr_inner(&mut self) -> Option<Lit> {
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.seq(b']').map(|(items, _)| Lit::List(items))
            }
            b'(' => {
                self.i += 1;
                let (items, comma) = self.seq(b')')?;
                // `(1)` is 1; `(1,)` and `()` are tuples.
                if items.len() == 1 && !comma {
                    items.into_iter().next()
                } else {
                    Some(Lit::List(items))
                }
            }
            b'{' => {
                self.i += 1;
                self.dict_or_set()
            }
            b'\'' | b'"' => self.string(),
            b'+' | b'-' => {
                let neg = self.s[self.i] == b'-';
                self.i += 1;
                match self.expr()? {
                    Lit::Int(i) => Some(Lit::Int(if neg { -i } else { i })),
                    Lit::Float(f) => Some(Lit::Float(if neg { -f } else { f })),
                    _ => None,
                }
            }
            c if c.is_ascii_digit() || c == b'.' => self.number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
                {
                    self.i += 1;
                }
                let word = &self.s[start..self.i];
                if matches!(self.s.get(self.i), Some(b'\'' | b'"')) {
                    // String prefixes (r'', u''): only plain ones are literals here.
                    return match word {
                        b"u" | b"U" => self.string(),
                        _ => None,
                    };
                }
                match word {
                    b"True" => Some(Lit::Bool(true)),
                    b"False" => Some(Lit::Bool(false)),
                    b"None" => Some(Lit::None),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Items up to `close`; whether a comma was seen.
    fn seq(&mut self, close: u8) -> Option<(Vec<Lit>, bool)> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            if self.eat(close) {
                return Some((items, comma));
            }
            items.push(self.expr()?);
            if self.eat(b',') {
                comma = true;
            } else {
                return self.eat(close).then_some((items, comma));
            }
        }
    }

    fn dict_or_set(&mut self) -> Option<Lit> {
        if self.eat(b'}') {
            return Some(Lit::Dict(Vec::new()));
        }
        let first = self.expr()?;
        if self.eat(b':') {
            let mut pairs = vec![(first, self.expr()?)];
            loop {
                if !self.eat(b',') {
                    return self.eat(b'}').then_some(Lit::Dict(pairs));
                }
                if self.eat(b'}') {
                    return Some(Lit::Dict(pairs));
                }
                let k = self.expr()?;
                if !self.eat(b':') {
                    return None;
                }
                let v = self.expr()?;
                if let Some(slot) = pairs.iter_mut().find(|(pk, _)| *pk == k) {
                    slot.1 = v;
                } else {
                    pairs.push((k, v));
                }
            }
        }
        // A set: unique items, as a list.
        let mut items = vec![first];
        loop {
            if !self.eat(b',') {
                return self.eat(b'}').then_some(Lit::List(items));
            }
            if self.eat(b'}') {
                return Some(Lit::List(items));
            }
            let v = self.expr()?;
            if !items.contains(&v) {
                items.push(v);
            }
        }
    }

    fn string(&mut self) -> Option<Lit> {
        let q = self.s[self.i];
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            if c == q && (!triple || self.s[self.i..].starts_with(&[q, q, q])) {
                self.i += if triple { 3 } else { 1 };
                return String::from_utf8(out).ok().map(Lit::Str);
            }
            if c == b'\n' && !triple {
                return None;
            }
            self.i += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = *self.s.get(self.i)?;
            self.i += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0' => out.push(0),
                b'\\' | b'\'' | b'"' => out.push(e),
                b'\n' => {}
                other => {
                    out.push(b'\\');
                    out.push(other);
                }
            }
        }
    }

    fn number(&mut self) -> Option<Lit> {
        let start = self.i;
        let s = self.s;
        if s[start..].starts_with(b"0x") || s[start..].starts_with(b"0X") {
            return self.radix(16);
        }
        if s[start..].starts_with(b"0o") || s[start..].starts_with(b"0O") {
            return self.radix(8);
        }
        if s[start..].starts_with(b"0b") || s[start..].starts_with(b"0B") {
            return self.radix(2);
        }
        let mut float = false;
        while self.i < s.len() {
            match s[self.i] {
                b'0'..=b'9' | b'_' => {}
                b'.' => float = true,
                b'e' | b'E' => {
                    float = true;
                    if matches!(s.get(self.i + 1), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                }
                _ => break,
            }
            self.i += 1;
        }
        let text: String = std::str::from_utf8(&s[start..self.i])
            .ok()?
            .chars()
            .filter(|c| *c != '_')
            .collect();
        if matches!(s.get(self.i), Some(c) if c.is_ascii_alphabetic()) {
            return None; // 3j, 3x
        }
        if float {
            text.parse::<f64>().ok().map(Lit::Float)
        } else {
            // Python 3 refuses `012` (but accepts `0` and `00`).
            if text.len() > 1 && text.starts_with('0') && text.bytes().any(|c| c != b'0') {
                return None;
            }
            text.parse::<i128>().ok().map(Lit::Int)
        }
    }

    fn radix(&mut self, radix: u32) -> Option<Lit> {
        self.i += 2;
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        let digits: String = std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .chars()
            .filter(|c| *c != '_')
            .collect();
        i128::from_str_radix(&digits, radix).ok().map(Lit::Int)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_typed_as_ha_types_them() {
        assert_eq!(parse_result("3"), json!(3));
        assert_eq!(parse_result("-3"), json!(-3));
        assert_eq!(parse_result("3.5"), json!(3.5));
        assert_eq!(parse_result("3.0"), json!(3.0));
        assert_eq!(parse_result("03"), json!("03"));
        assert_eq!(parse_result("1e3"), json!("1e3"));
        assert_eq!(parse_result("1_000"), json!("1_000"));
        assert_eq!(parse_result("True"), json!(true));
        assert_eq!(parse_result("true"), json!("true"));
        assert_eq!(parse_result("None"), json!(null));
        assert_eq!(parse_result("on"), json!("on"));
        assert_eq!(parse_result("'quoted'"), json!("'quoted'"));
        assert_eq!(parse_result("[1, 'a', None]"), json!([1, "a", null]));
        assert_eq!(parse_result("(1, 2)"), json!([1, 2]));
        assert_eq!(parse_result("(1)"), json!("(1)"));
        assert_eq!(
            parse_result("{'a': 1, 2: [True]}"),
            json!({"a": 1, "2": [true]})
        );
        assert_eq!(parse_result("{1, 1, 2}"), json!([1, 2]));
        assert_eq!(parse_result(""), json!(""));
        assert_eq!(parse_result("[1,"), json!("[1,"));
        assert_eq!(parse_result("12:30"), json!("12:30"));
        assert_eq!(parse_result("2026-12-07"), json!("2026-12-07"));
    }

    /// `{{ "[" * 100000 }}` used to recurse once per bracket and overflow
    /// the stack; past [`MAX_DEPTH`] the text stays a string.
    #[test]
    fn deep_nesting_stays_a_string() {
        for open in ["[", "(", "{", "-", "+", "[-"] {
            let text = open.repeat(100_000);
            assert_eq!(parse_result(&text), json!(text), "{open}");
        }
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse_result(&deep), json!(deep));
        // Within the cap it is still a value.
        let fine = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        let mut v = parse_result(&fine);
        for _ in 0..MAX_DEPTH - 1 {
            v = v.as_array().expect("a list")[0].clone();
        }
        assert_eq!(v, json!(1));
    }
}
