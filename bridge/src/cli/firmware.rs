//! `hearth firmware`: the sealed secrets partition of an ESP32-C3 sensor
//! node (`firmware/esp32c3-sensor`), and the eFuse key it is sealed under.
//!
//! - `hearth firmware keygen --out efuse.key`: 32 random bytes, mode 0600
//!   (an existing file is never overwritten: it may be burnt into a node).
//! - `hearth firmware seal --device ID --key-file efuse.key --wifi-ssid S
//!   --wifi-password-file F [--mqtt-host H] [--mqtt-port 8883]
//!   [--data-dir DIR] --out hearth_sec.bin`: the node's Wi-Fi and MQTT
//!   credentials (user = the device id, password from
//!   `<data>/devices/<ID>/password`, the CA from `<data>/tls/ca.pem`, both
//!   written by `hearth certs`), sealed with AES-256-GCM under
//!   `HMAC-SHA256(key, "hearth-seal-v1:" || ID)`: the key the node's HMAC
//!   peripheral derives from the same key burnt into its eFuses
//!   (`espefuse.py burn_key BLOCK_KEY4 efuse.key HMAC_UP`). Format:
//!   [`hearth_node_core::seal`].
//!
//! Nothing secret is printed: not the key, not a password.

use anyhow::{Context as _, bail};
use hearth_node_core::seal::{self, Secrets};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::security::SecurityPaths;

/// Size of an eFuse key block, and of a key file.
pub const KEY_LEN: usize = 32;
/// MQTT over TLS.
pub const DEFAULT_MQTT_PORT: u16 = 8883;

#[derive(Debug, clap::Subcommand)]
pub enum FirmwareAction {
    /// Write the sealed secrets partition image (4096 bytes) for a node.
    Seal {
        /// The node's id (`[a-z0-9_-]{1,32}`): its MQTT user name, and the
        /// id the image is bound to.
        #[arg(long, value_name = "ID")]
        device: String,
        /// The node's eFuse key: exactly 32 raw bytes (`hearth firmware keygen`).
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        #[arg(long, value_name = "SSID")]
        wifi_ssid: String,
        /// A file holding the Wi-Fi password (one trailing newline is ignored).
        #[arg(long, value_name = "FILE")]
        wifi_password_file: PathBuf,
        /// The broker's host name or address as the node reaches it (it must
        /// be in the server certificate); default: this machine's host name.
        #[arg(long, value_name = "HOST")]
        mqtt_host: Option<String>,
        #[arg(long, value_name = "PORT", default_value_t = DEFAULT_MQTT_PORT)]
        mqtt_port: u16,
        /// The bridge's data directory (where `hearth certs` wrote the CA
        /// and the device's password).
        #[arg(long, value_name = "DIR", default_value = crate::app::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// The image to write (mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Make a random 32-byte eFuse key file (mode 0600; never overwrites).
    Keygen {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Runs a `hearth firmware` command; prints what it did (no secrets).
pub fn run(action: FirmwareAction) -> anyhow::Result<()> {
    match action {
        FirmwareAction::Keygen { out } => {
            keygen(&out)?;
            println!(
                "Wrote a random 32-byte eFuse key to {} (mode 0600). Burn it into the node \
                 (irreversible): espefuse.py burn_key BLOCK_KEY4 {} HMAC_UP; keep the file \
                 to seal the node's secrets (`hearth firmware seal`).",
                out.display(),
                out.display()
            );
        }
        FirmwareAction::Seal {
            device,
            key_file,
            wifi_ssid,
            wifi_password_file,
            mqtt_host,
            mqtt_port,
            data_dir,
            out,
        } => {
            let mqtt_host = match mqtt_host {
                Some(h) => h,
                None => hostname()?,
            };
            let opts = SealOptions {
                device,
                key_file,
                wifi_ssid,
                wifi_password_file,
                mqtt_host,
                mqtt_port,
                data_dir,
                out,
            };
            let used = seal_command(&opts)?;
            println!(
                "Sealed the secrets of node `{}` (Wi-Fi `{}`, MQTT {}:{} as `{}`, CA pinned) \
                 into {} ({} bytes, {used} used). Flash it to the node's `hearth_sec` partition \
                 (espflash write-bin <partition offset> {}).",
                opts.device,
                opts.wifi_ssid,
                opts.mqtt_host,
                opts.mqtt_port,
                opts.device,
                opts.out.display(),
                seal::IMAGE_LEN,
                opts.out.display()
            );
        }
    }
    Ok(())
}

/// Writes 32 random bytes to `out`, mode 0600; refuses an existing file.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "{} exists: not overwritten (it may be burnt into a node already); choose another --out",
                    out.display()
                )
            } else {
                anyhow::anyhow!("creating {}: {e}", out.display())
            }
        })?;
    f.write_all(&key)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// What `hearth firmware seal` seals.
#[derive(Debug, Clone)]
pub struct SealOptions {
    pub device: String,
    pub key_file: PathBuf,
    pub wifi_ssid: String,
    pub wifi_password_file: PathBuf,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub data_dir: PathBuf,
    pub out: PathBuf,
}

/// Reads an eFuse key file: exactly [`KEY_LEN`] raw bytes.
pub fn read_key_file(path: &Path) -> anyhow::Result<[u8; KEY_LEN]> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow::anyhow!(
            "{}: {} bytes; an eFuse key file must be exactly {KEY_LEN} raw bytes (what \
             `espefuse.py burn_key` burns; make one with `hearth firmware keygen --out FILE`)",
            path.display(),
            bytes.len()
        )
    })
}

/// A one-line secret from a file, without its trailing newline.
fn read_secret_line(path: &Path, missing: impl FnOnce() -> String) -> anyhow::Result<String> {
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{}", missing()),
        Err(e) => bail!("reading {}: {e}", path.display()),
    };
    let mut text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

fn field<const N: usize>(
    what: &str,
    value: &str,
) -> anyhow::Result<hearth_node_core::heapless::String<N>> {
    hearth_node_core::heapless::String::try_from(value).map_err(|_| {
        anyhow::anyhow!(
            "{what} is {} bytes; at most {N} fit in the sealed image",
            value.len()
        )
    })
}

/// Builds the secrets from the options and the data directory, seals them
/// and writes the image (mode 0600). Returns the bytes used in the image.
pub fn seal_command(opts: &SealOptions) -> anyhow::Result<usize> {
    let id = opts.device.as_str();
    hearth_node_core::validate_node_id(id).map_err(|e| anyhow::anyhow!("--device `{id}`: {e}"))?;
    let efuse = read_key_file(&opts.key_file)?;
    let paths = SecurityPaths::new(&opts.data_dir);
    let mqtt_password = read_secret_line(&paths.device_password(id), || {
        format!(
            "{} not found: node `{id}` has no MQTT credential in {}; run `hearth certs issue --device {id} --data-dir {}` first",
            paths.device_password(id).display(),
            opts.data_dir.display(),
            opts.data_dir.display()
        )
    })?;
    let ca_pem = read_secret_line(&paths.ca_cert(), || {
        format!(
            "{} not found: no CA in {}; run `hearth certs init --data-dir {}` (then `hearth certs issue --device {id}`) first",
            paths.ca_cert().display(),
            opts.data_dir.display(),
            opts.data_dir.display()
        )
    })? + "\n";
    let wifi_password = read_secret_line(&opts.wifi_password_file, || {
        format!("{} not found", opts.wifi_password_file.display())
    })?;
    if opts.wifi_ssid.is_empty() {
        bail!("--wifi-ssid is empty");
    }
    if !(wifi_password.is_empty() || (8..=64).contains(&wifi_password.len())) {
        bail!(
            "the Wi-Fi password in {} is {} characters; WPA2 takes 8 to 63 (or 64 hex digits), an open network none",
            opts.wifi_password_file.display(),
            wifi_password.len()
        );
    }
    if opts.mqtt_host.is_empty() {
        bail!("--mqtt-host is empty");
    }
    if mqtt_password.is_empty() {
        bail!(
            "{} is empty; run `hearth certs issue --device {id}` again",
            paths.device_password(id).display()
        );
    }
    let secrets = Secrets {
        wifi_ssid: field("--wifi-ssid", &opts.wifi_ssid)?,
        wifi_password: field("the Wi-Fi password", &wifi_password)?,
        mqtt_host: field("--mqtt-host", &opts.mqtt_host)?,
        mqtt_port: opts.mqtt_port,
        mqtt_username: field("--device", id)?,
        mqtt_password: field("the device's MQTT password", &mqtt_password)?,
        ca_pem: Some(field(
            &format!("the CA certificate {}", paths.ca_cert().display()),
            &ca_pem,
        )?),
    };
    let mut plaintext = vec![0u8; seal::MAX_PLAINTEXT];
    let json = secrets
        .encode(&mut plaintext)
        .map_err(|_| anyhow::anyhow!("the secrets do not fit in a sealed image"))?;
    let key = seal::derive_key(&efuse, id);
    let mut nonce = [0u8; seal::NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let mut image = [0u8; seal::IMAGE_LEN];
    let used = seal::seal(&key, id, nonce, json, &mut image)
        .map_err(|e| anyhow::anyhow!("sealing for `{id}`: {e}"))?;
    // The plaintext buffer held every secret: clear it.
    plaintext.fill(0);
    // 0600 through a temp file and a rename (security::files).
    crate::security::files::write_private(&opts.out, &image)?;
    Ok(used)
}

/// This machine's host name (the default `--mqtt-host`).
fn hostname() -> anyhow::Result<String> {
    crate::security::certs::system_hostname()
        .ok_or_else(|| anyhow::anyhow!("cannot tell this machine's host name; give --mqtt-host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_must_be_32_bytes_and_keygen_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.key");
        std::fs::write(&short, [1u8; 31]).unwrap();
        let e = read_key_file(&short).unwrap_err().to_string();
        assert!(e.contains("short.key") && e.contains("31 bytes"), "{e}");
        assert!(e.contains("exactly 32 raw bytes"), "{e}");
        let k = dir.path().join("efuse.key");
        keygen(&k).unwrap();
        let key = read_key_file(&k).unwrap();
        assert_ne!(key, [0u8; 32]);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = keygen(&k).unwrap_err().to_string();
        assert!(e.contains("not overwritten"), "{e}");
        assert_eq!(read_key_file(&k).unwrap(), key, "kept");
    }
}
