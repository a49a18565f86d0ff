//! Mosquitto password files (`password_file`), so the embedded front and an
//! external Mosquitto read the same file.
//!
//! One `user:hash` per line. `hash` as mosquitto_passwd ≥ 2.0 writes it:
//! `$7$<iterations>$<base64 salt>$<base64 hash>`, the hash being
//! PBKDF2-HMAC-SHA512(password, salt, iterations) of 64 bytes, the salt 12
//! random bytes, base64 the standard alphabet with padding (Mosquitto's
//! `common/password_mosq.c`: `pw__hash` / `pw__verify`; 101 iterations is
//! mosquitto_passwd's default). The older `$6$<salt>$<hash>` (one SHA-512
//! of password || salt) is read and verified too; [`Passwd::set`] always
//! writes `$7$`. Blank lines and `#` comments are skipped (as Mosquitto
//! 2.0).

use base64::Engine;
use sha2::{Digest, Sha512};
use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;

/// mosquitto_passwd's default PBKDF2 iteration count.
pub const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;
/// Iteration counts above this are refused when parsing: a hostile or
/// mistaken file could otherwise make every CONNECT cost seconds of CPU
/// (mosquitto_passwd writes 101; 100 000 PBKDF2-SHA512 rounds already take
/// tens of milliseconds on a small machine).
pub const MAX_ITERATIONS: u32 = 100_000;

#[derive(Clone, PartialEq, Eq)]
enum Hash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512(password || salt).
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
}

impl Hash {
    fn compute(&self, password: &[u8]) -> Vec<u8> {
        match self {
            Hash::Pbkdf2 {
                iterations, salt, ..
            } => {
                let mut out = [0u8; HASH_LEN];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                out.to_vec()
            }
            Hash::Sha512 { salt, .. } => {
                let mut h = Sha512::new();
                h.update(password);
                h.update(salt);
                h.finalize().to_vec()
            }
        }
    }

    fn stored(&self) -> &[u8] {
        match self {
            Hash::Pbkdf2 { hash, .. } | Hash::Sha512 { hash, .. } => hash,
        }
    }

    fn to_text(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => format!("$7${iterations}${}${}", b64.encode(salt), b64.encode(hash)),
            Hash::Sha512 { salt, hash } => format!("$6${}${}", b64.encode(salt), b64.encode(hash)),
        }
    }
}

/// A parsed password file: user -> hash, in file order.
#[derive(Clone, Default)]
pub struct Passwd {
    entries: Vec<(String, Hash)>,
}

impl fmt::Debug for Passwd {
    // Users only: hashes are secrets too (offline guessing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passwd")
            .field("users", &self.users().collect::<Vec<_>>())
            .finish()
    }
}

/// A line of a password file that is not `user:$7$...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdError {
    /// 1-based.
    pub line: usize,
    pub expected: String,
}

impl fmt::Display for PasswdError {
    // Never the line itself: it holds a hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "password file line {}: expected {}",
            self.line, self.expected
        )
    }
}

impl std::error::Error for PasswdError {}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn parse_hash(s: &str) -> Result<Hash, &'static str> {
    const EXPECTED: &str = "`$7$<iterations>$<base64 salt>$<base64 hash>` (mosquitto_passwd 2.0) or `$6$<salt>$<hash>`";
    let parts: Vec<&str> = s.split('$').collect();
    match parts.as_slice() {
        ["", "7", iterations, salt, hash] => {
            let iterations: u32 = iterations.parse().map_err(|_| EXPECTED)?;
            if iterations == 0 || iterations > MAX_ITERATIONS {
                return Err(
                    "an iteration count between 1 and 100000 (mosquitto_passwd writes 101)",
                );
            }
            let salt = decode_b64(salt).ok_or(EXPECTED)?;
            let hash = decode_b64(hash).ok_or(EXPECTED)?;
            if hash.len() != HASH_LEN || salt.is_empty() {
                return Err("a 64-byte PBKDF2-SHA512 hash and a non-empty salt");
            }
            Ok(Hash::Pbkdf2 {
                iterations,
                salt,
                hash,
            })
        }
        ["", "6", salt, hash] => {
            let salt = decode_b64(salt).ok_or(EXPECTED)?;
            let hash = decode_b64(hash).ok_or(EXPECTED)?;
            if hash.len() != HASH_LEN {
                return Err("a 64-byte SHA-512 hash");
            }
            Ok(Hash::Sha512 { salt, hash })
        }
        _ => Err(EXPECTED),
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // No OS randomness means no safe credential: nothing sensible to fall
    // back to.
    getrandom::fill(&mut b).expect("the OS random number generator failed");
    b
}

impl Passwd {
    /// Parses a password file's text.
    pub fn parse(text: &str) -> Result<Passwd, PasswdError> {
        let mut p = Passwd::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |expected: &str| PasswdError {
                line: i + 1,
                expected: expected.to_string(),
            };
            let (user, hash) = line.split_once(':').ok_or_else(|| err("`user:hash`"))?;
            if user.is_empty() {
                return Err(err("a user name before `:`"));
            }
            let hash = parse_hash(hash).map_err(err)?;
            if p.entries.iter().any(|(u, _)| u == user) {
                return Err(err("each user once"));
            }
            p.entries.push((user.to_string(), hash));
        }
        Ok(p)
    }

    /// Reads and parses a password file.
    pub fn load(path: &Path) -> anyhow::Result<Passwd> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("password file {}: {e}", path.display()))?;
        Passwd::parse(&text).map_err(|e| anyhow::anyhow!("password file {}: {e}", path.display()))
    }

    /// Whether `password` is `user`'s. The comparison is constant-time; an
    /// unknown user costs the same PBKDF2 as a known one.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.entries.iter().find(|(u, _)| u == user) {
            Some((_, hash)) => {
                let computed = hash.compute(password);
                let stored = hash.stored();
                computed.len() == stored.len() && bool::from(computed.ct_eq(stored))
            }
            None => {
                let dummy = Hash::Pbkdf2 {
                    iterations: ITERATIONS,
                    salt: vec![0; SALT_LEN],
                    hash: vec![0; HASH_LEN],
                };
                let _ = std::hint::black_box(dummy.compute(password));
                false
            }
        }
    }

    /// Sets (or replaces) `user`'s password: `$7$`, 101 iterations, a fresh
    /// 12-byte salt.
    pub fn set(&mut self, user: &str, password: &str) {
        assert!(
            !user.is_empty() && !user.contains([':', '\n', '\r']),
            "a password file user name cannot be empty or hold `:` or a line break"
        );
        let salt = random_bytes::<SALT_LEN>().to_vec();
        let mut hash = Hash::Pbkdf2 {
            iterations: ITERATIONS,
            salt,
            hash: Vec::new(),
        };
        let computed = hash.compute(password.as_bytes());
        if let Hash::Pbkdf2 { hash: h, .. } = &mut hash {
            *h = computed;
        }
        match self.entries.iter_mut().find(|(u, _)| u == user) {
            Some((_, h)) => *h = hash,
            None => self.entries.push((user.to_string(), hash)),
        }
    }

    /// Removes `user`; whether it was there.
    pub fn remove(&mut self, user: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(u, _)| u != user);
        self.entries.len() != before
    }

    /// Whether the file has this user.
    pub fn contains(&self, user: &str) -> bool {
        self.entries.iter().any(|(u, _)| u == user)
    }

    /// Whether `user` has the same entry (hash, salt, iterations) in both
    /// files: false when it is missing from either or its password changed.
    pub fn same_entry(&self, other: &Passwd, user: &str) -> bool {
        let find = |p: &Passwd| {
            p.entries
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, h)| h.clone())
        };
        match (find(self), find(other)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// User names, in file order.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(u, _)| u.as_str())
    }

    /// The file's text, one `user:hash` line per user.
    pub fn to_file_text(&self) -> String {
        self.entries
            .iter()
            .map(|(u, h)| format!("{u}:{}\n", h.to_text()))
            .collect()
    }
}

/// A new random password: 24 characters from [A-Za-z0-9] (≈143 bits), from
/// the OS generator (rejection sampling: no modulo bias).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        for b in random_bytes::<32>() {
            // 248 = 4 * 62: bytes at or above it would favour the first
            // letters.
            if b < 248 && out.len() < 24 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made once with the real tool (Debian mosquitto 2.0.11):
    /// `mosquitto_passwd -c -b /tmp/pw alice 'secret-pass' && cat /tmp/pw`.
    const MOSQUITTO_LINE: &str = "alice:$7$101$9XpvSh1U1G89oQBd$3mhxCuqpSQZMpkS3h82v1Y3ZQmS6D1kQdzYoBH7FYRrK6EEZApuTbpNPPjUELc80dJhGQkdim/4becJDdZXdDg==\n";

    #[test]
    fn verifies_a_mosquitto_passwd_line() {
        let p = Passwd::parse(MOSQUITTO_LINE).unwrap();
        assert!(p.verify("alice", b"secret-pass"));
        assert!(!p.verify("alice", b"secret-pasS"));
        assert!(!p.verify("alice", b""));
        assert!(!p.verify("bob", b"secret-pass"));
        // Round trip keeps the line byte for byte.
        assert_eq!(p.to_file_text(), MOSQUITTO_LINE);
    }

    #[test]
    fn set_writes_the_mosquitto_format_and_verifies() {
        let mut p = Passwd::parse(MOSQUITTO_LINE).unwrap();
        p.set("dev-1", "hunter2hunter2");
        let text = p.to_file_text();
        let line = text.lines().nth(1).unwrap();
        let parts: Vec<&str> = line.split('$').collect();
        assert_eq!(parts[0], "dev-1:");
        assert_eq!(parts[1], "7");
        assert_eq!(parts[2], "101");
        assert_eq!(decode_b64(parts[3]).unwrap().len(), 12);
        assert_eq!(decode_b64(parts[4]).unwrap().len(), 64);
        let q = Passwd::parse(&text).unwrap();
        assert!(q.verify("dev-1", b"hunter2hunter2"));
        assert!(!q.verify("dev-1", b"hunter2hunter3"));
        assert!(q.verify("alice", b"secret-pass"));
        // A second set replaces (new salt), it does not add a line.
        let mut r = q.clone();
        r.set("dev-1", "other");
        assert_eq!(r.users().count(), 2);
        assert!(r.verify("dev-1", b"other") && !r.verify("dev-1", b"hunter2hunter2"));
        assert!(r.remove("dev-1") && !r.remove("dev-1"));
        assert_eq!(r.to_file_text(), MOSQUITTO_LINE);
    }

    #[test]
    fn old_sha512_format() {
        let salt = b"saltsalt";
        let mut h = Sha512::new();
        h.update(b"pw");
        h.update(salt);
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = format!("old:$6${}${}\n", b64.encode(salt), b64.encode(h.finalize()));
        let p = Passwd::parse(&line).unwrap();
        assert!(p.verify("old", b"pw") && !p.verify("old", b"pw2"));
    }

    #[test]
    fn errors_name_the_line_not_the_hash() {
        let e = Passwd::parse("# c\n\nbob\n").unwrap_err();
        assert_eq!(e.line, 3);
        let e = Passwd::parse("bob:plaintext\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(!e.to_string().contains("plaintext"));
        let e = Passwd::parse("bob:$7$0$AAAA$AAAA\n").unwrap_err();
        assert!(e.expected.contains("iteration"));
        let e = Passwd::parse("bob:$7$101$AAAA$AAAA\n").unwrap_err();
        assert!(e.expected.contains("64-byte"));
        // An iteration count that would stall every CONNECT: refused, and
        // the error names the line.
        let hash = format!("AAAAAAAAAAAAAAAA${}==", "A".repeat(86));
        let slow = format!("ok:$7$100000${hash}\nslow:$7$1000000${hash}\n");
        let e = Passwd::parse(&slow).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().contains("line 2") && e.expected.contains("100000"),
            "{e}"
        );
        assert!(Passwd::parse(&format!("ok:$7$100000${hash}\n")).is_ok());
        let dup = format!("{MOSQUITTO_LINE}{MOSQUITTO_LINE}");
        assert_eq!(Passwd::parse(&dup).unwrap_err().line, 2);
        assert!(!format!("{:?}", Passwd::parse(MOSQUITTO_LINE).unwrap()).contains("$7$"));
    }

    #[test]
    fn generated_passwords() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), 24);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
