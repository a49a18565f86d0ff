//! HA's `slugify` (`homeassistant/util/__init__.py`), the one Hearth uses
//! for every id it derives from a name (entity ids, area/floor/label ids,
//! mirrored devices).

/// HA's `slugify` with `_`: lower case ASCII letters and digits, every
/// other run of characters one `_`, none at the ends (`"laptop-7 Battery"`
/// → `laptop_7_battery`); an empty text stays empty, a text with nothing
/// left is `unknown` (as HA). Letters outside ASCII are not transliterated
/// (HA's `unidecode` is not reproduced: `"Küche"` → `k_che`, HA `kuche`).
pub fn slugify(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let t = out.trim_matches('_');
    if t.is_empty() {
        "unknown".into()
    } else {
        t.into()
    }
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn as_home_assistant() {
        assert_eq!(slugify("Laptop 01: battery %"), "laptop_01_battery");
        assert_eq!(slugify("laptop-7 Battery"), "laptop_7_battery");
        assert_eq!(slugify("  Living   Room "), "living_room");
        assert_eq!(slugify("%%"), "unknown");
        assert_eq!(slugify(""), "");
    }
}
