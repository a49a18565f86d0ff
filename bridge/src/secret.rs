//! A secret from the config (password, token, key): written inline, or
//! read from a file or an environment variable so it can stay out of the
//! config file, and never printed.
//!
//! ```toml
//! password = "hunter2"                        # inline
//! password = { file = "/run/secrets/smtp" }   # the file's text, one trailing newline trimmed
//! password = { env = "HEARTH_SMTP_PASSWORD" } # the variable's value
//! ```
//!
//! The file or variable is read when the config is parsed; an error names
//! the file or the variable (toml adds the key and line), never what it
//! held. `Debug` and `Display` print `***`; the value is reached only
//! through [`Secret::expose`], at the one place that hands it to a
//! protocol (SMTP AUTH, an HTTP header, MQTT CONNECT).

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// What `Debug` and `Display` print instead of a secret.
pub const REDACTED: &str = "***";

/// A secret value and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    value: String,
    origin: Origin,
}

/// Where a [`Secret`] was read from (safe to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Inline,
    File(PathBuf),
    Env(String),
}

impl Secret {
    /// A secret given in code (tests, command-line flags).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret {
            value: value.into(),
            origin: Origin::Inline,
        }
    }

    /// Reads a secret file: its text with one trailing newline (`\n` or
    /// `\r\n`) removed. Errors name the file, never its content.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let mut text = String::from_utf8(bytes)
            .map_err(|_| format!("secret file {} is not UTF-8 text", path.display()))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Secret {
            value: text,
            origin: Origin::File(path.to_path_buf()),
        })
    }

    /// Reads a secret from an environment variable. Errors name the
    /// variable, never its value.
    pub fn from_env(var: &str) -> Result<Secret, String> {
        match std::env::var(var) {
            Ok(value) => Ok(Secret {
                value,
                origin: Origin::Env(var.to_string()),
            }),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {var} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {var} is not valid UTF-8"))
            }
        }
    }

    /// The secret itself: hand it to the protocol, never to a log line.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Where it came from, for messages: `inline`, `file /path`, `env VAR`.
    pub fn describe_origin(&self) -> String {
        match &self.origin {
            Origin::Inline => "inline".into(),
            Origin::File(p) => format!("file {}", p.display()),
            Origin::Env(v) => format!("env {v}"),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The forms a secret takes in the config.
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Inline(String),
    Reference(Reference),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reference {
    file: Option<PathBuf>,
    env: Option<String>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        use serde::de::Error;
        // serde's untagged error would not say what is expected.
        let raw = Raw::deserialize(d).map_err(|_| {
            D::Error::custom(
                "expected a secret: \"text\", { file = \"path\" } or { env = \"VARIABLE\" }",
            )
        })?;
        match raw {
            Raw::Inline(value) => Ok(Secret::new(value)),
            Raw::Reference(Reference {
                file: Some(path),
                env: None,
            }) => Secret::from_file(&path).map_err(D::Error::custom),
            Raw::Reference(Reference {
                file: None,
                env: Some(var),
            }) => Secret::from_env(&var).map_err(D::Error::custom),
            Raw::Reference(_) => Err(D::Error::custom(
                "expected a secret with exactly one of `file` or `env`",
            )),
        }
    }
}

/// `url` with its secret parts replaced by `***`: the user info
/// (`user:password@`), path segments that look like tokens (see
/// [`redact_path`]) and the values of query parameters whose names say
/// they carry a credential (`token`, `apikey`, `access_token`, `sig`,
/// `password`…; the other parameters, like `latitude`, stay readable). For
/// error messages and logs that quote a URL.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_userinfo_text(url);
    };
    if parsed.cannot_be_a_base() {
        return redact_userinfo_text(url);
    }
    if !parsed.username().is_empty() {
        let _ = parsed.set_username(REDACTED);
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(REDACTED));
    }
    let path = redact_path(parsed.path());
    if path != parsed.path() {
        parsed.set_path(&path);
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_credential_name(&k) {
                    REDACTED.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.iter().any(|(_, v)| v == REDACTED) {
            parsed.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    parsed.to_string()
}

/// `path` with every segment that looks like a token replaced by `***`:
/// 16 characters or more mixing letters and digits, as the tokens in
/// Slack's (`/services/T…/B…/<token>`) and Discord's
/// (`/api/webhooks/<id>/<token>`) webhook URLs; words and ids stay.
pub fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let letters = seg.chars().any(|c| c.is_ascii_alphabetic());
            let digits = seg.chars().any(|c| c.is_ascii_digit());
            if seg.len() >= 16 && letters && digits {
                REDACTED
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A query parameter name that usually carries a credential.
fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "token",
        "key",
        "secret",
        "pass",
        "auth",
        "sig",
        "session",
        "credential",
    ]
    .iter()
    .any(|w| name.contains(w))
}

/// Fallback for text that does not parse as a URL: cut `scheme://…@` user
/// info.
fn redact_userinfo_text(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_string();
    };
    let rest = &text[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &text[..start], &rest[at..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Conf {
        #[allow(dead_code)]
        password: Secret,
    }

    fn parse(text: &str) -> Result<Secret, String> {
        toml::from_str::<Conf>(text)
            .map(|c| c.password)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn inline_file_and_env_secrets_are_read() {
        assert_eq!(parse("password = \"s3cret\"").unwrap().expose(), "s3cret");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\r\n").unwrap();
        let s = parse(&format!("password = {{ file = \"{}\" }}", file.display())).unwrap();
        assert_eq!(s.expose(), "from-file");
        assert_eq!(s.origin(), &Origin::File(file.clone()));
        // Only one trailing newline goes; inner whitespace stays.
        std::fs::write(&file, " a b\n\n").unwrap();
        let s = parse(&format!("password = {{ file = \"{}\" }}", file.display())).unwrap();
        assert_eq!(s.expose(), " a b\n");

        // SAFETY (edition 2024): a variable only this test reads.
        unsafe { std::env::set_var("HEARTH_SECRET_TEST_VAR", "from-env") };
        let s = parse("password = { env = \"HEARTH_SECRET_TEST_VAR\" }").unwrap();
        assert_eq!(s.expose(), "from-env");
        assert_eq!(s.describe_origin(), "env HEARTH_SECRET_TEST_VAR");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        let c = Conf { password: s };
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
        assert!(!format!("{c:#?}").contains("hunter2"));
    }

    #[test]
    fn errors_name_the_key_and_source_never_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = parse(&format!(
            "password = {{ file = \"{}\" }}",
            missing.display()
        ))
        .unwrap_err();
        assert!(
            e.contains("password") && e.contains(&missing.display().to_string()),
            "{e}"
        );
        // A file that is not text: named, content not quoted.
        let bin = dir.path().join("bin");
        std::fs::write(&bin, b"topsecret\xff\xfe").unwrap();
        let e = parse(&format!("password = {{ file = \"{}\" }}", bin.display())).unwrap_err();
        assert!(e.contains("not UTF-8") && !e.contains("topsecret"), "{e}");

        let e = parse("password = { env = \"HEARTH_SECRET_SURELY_UNSET\" }").unwrap_err();
        assert!(
            e.contains("password") && e.contains("HEARTH_SECRET_SURELY_UNSET"),
            "{e}"
        );
        let e = parse("password = { file = \"/a\", env = \"B\" }").unwrap_err();
        assert!(e.contains("exactly one"), "{e}");
        let e = parse("password = 42").unwrap_err();
        assert!(e.contains("expected a secret"), "{e}");
        let e = parse("password = { path = \"/x\" }").unwrap_err();
        assert!(e.contains("expected a secret"), "{e}");
    }

    #[test]
    fn urls_lose_their_user_info_and_query_values() {
        assert_eq!(
            redact_url("mqtt://bob:hunter2@broker.lan:1883"),
            "mqtt://***:***@broker.lan:1883"
        );
        let r = redact_url("https://hooks.example/x?token=abc123&room=1&apiKey=k9");
        assert!(!r.contains("abc123") && !r.contains("k9"), "{r}");
        assert!(r.contains("token=") && r.contains("room=1") && r.contains("hooks.example"));
        // Nothing secret: the URL as it was (no re-encoding).
        let u = "http://h/v1/forecast?latitude=48.86&hourly=a,b";
        assert_eq!(redact_url(u), u);
        assert_eq!(
            redact_url("http://example.com/path"),
            "http://example.com/path"
        );
        let r = redact_url(
            "https://hooks.slack.com/services/T0ABCDE12/B0ABCDE34/XyZ12abCD34efGH56ijKL78",
        );
        assert_eq!(
            r,
            "https://hooks.slack.com/services/T0ABCDE12/B0ABCDE34/***"
        );
        assert_eq!(redact_path("/reject/v1/forecast"), "/reject/v1/forecast");
        // Not a URL: user info still cut.
        let r = redact_url("mqtt://u:p w@host");
        assert!(!r.contains("p w"), "{r}");
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::Config;

    /// Config errors quote the line they point at: none may show an
    /// inline secret written on a line of the section at fault.
    #[test]
    fn config_errors_never_quote_an_inline_secret() {
        let cases = [
            // [influxdb] checked as a whole (try_from): the table is at fault.
            "[influxdb]\ntoken = \"tok-A1\"\nurl = \"ftp://x\"\norg = \"o\"\nbucket = \"b\"\n",
            "[influxdb]\nurl = \"http://u:tok-A1@x\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n",
            // An unknown key beside an inline password.
            "[[alerts.email]]\nhost = \"h\"\npassword = \"tok-A1\"\nfrom = \"a@b\"\nto = []\nbogus = 1\n",
            // A secret of the wrong shape on its own line.
            "[[alerts.email]]\nhost = \"h\"\npassword = [\"tok-A1\"]\nfrom = \"a@b\"\nto = []\n",
        ];
        for text in cases {
            let e = format!("{:#}", Config::from_toml(text, "c.toml").unwrap_err());
            assert!(!e.contains("tok-A1"), "{text}\n=> {e}");
        }
    }
}
