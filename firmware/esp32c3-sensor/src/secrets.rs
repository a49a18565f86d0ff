//! Sealed secrets: the `hearth_sec` flash partition (format v1, node-core's
//! `seal`), opened with a key the ESP32-C3's HMAC peripheral derives from the
//! eFuse key in BLOCK_KEY4 (purpose HMAC_UP). Software never sees the eFuse
//! key, only `K_seal = HMAC-SHA256(K_efuse, b"hearth-seal-v1:" || device_id)`.
//!
//! Any failure is an error: the caller does not start Wi-Fi (fail closed).

use core::fmt;

use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_hal::{
    hmac::{Hmac, HmacPurpose, KeyId},
    peripherals::{FLASH, HMAC},
};
use esp_storage::FlashStorage;
use hearth_node_core::seal::{
    self, IMAGE_LEN, MAX_CA_PEM, MAX_DEVICE_ID, MAX_HMAC_MESSAGE, Secrets,
};

/// Label of the partition in `partitions.csv`.
pub const PARTITION_LABEL: &str = "hearth_sec";
/// The eFuse key block holding K_efuse (burnt with purpose HMAC_UP).
pub const EFUSE_KEY: KeyId = KeyId::Key4;

#[derive(Debug)]
pub enum SecretsError {
    PartitionTable,
    NoPartition,
    PartitionTooSmall(u32),
    FlashRead,
    /// The image header's device id is not a valid node id.
    DeviceId,
    /// The HMAC peripheral refused: no key with purpose HMAC_UP in BLOCK_KEY4.
    EfuseKey,
    Unseal(seal::SealError),
    Json,
    /// The sealed MQTT user is not the device id the image was sealed for.
    UsernameMismatch,
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretsError::PartitionTable => f.write_str("cannot read the partition table"),
            SecretsError::NoPartition => write!(
                f,
                "no `{PARTITION_LABEL}` partition (flash with --partition-table partitions.csv)"
            ),
            SecretsError::PartitionTooSmall(n) => {
                write!(f, "`{PARTITION_LABEL}` is {n} bytes, needs {IMAGE_LEN}")
            }
            SecretsError::FlashRead => write!(f, "cannot read the `{PARTITION_LABEL}` partition"),
            SecretsError::DeviceId => f.write_str(
                "no sealed image (erased partition?) or a bad device id in its header: write hearth_sec.bin",
            ),
            SecretsError::EfuseKey => f.write_str(
                "the HMAC peripheral has no HMAC_UP key in eFuse BLOCK_KEY4 (see README: espefuse burn_key)",
            ),
            SecretsError::Unseal(e) => write!(f, "unseal: {e}"),
            SecretsError::Json => f.write_str("unsealed secrets are not the expected JSON"),
            SecretsError::UsernameMismatch => {
                f.write_str("sealed MQTT user name differs from the sealed device id")
            }
        }
    }
}

/// What the firmware needs from the sealed partition.
pub struct Loaded {
    pub device_id: heapless::String<MAX_DEVICE_ID>,
    pub secrets: Secrets,
}

/// Reads and opens the sealed partition.
pub fn load(flash: FLASH<'_>, hmac: HMAC<'_>) -> Result<Loaded, SecretsError> {
    let mut image = [0u8; IMAGE_LEN];
    read_partition(flash, &mut image)?;

    // The id is in the header (bytes 9..42). It is authenticated twice over:
    // it is in the AEAD's associated data, and the key is derived from it, so
    // an image moved to another device or edited does not open.
    let n = usize::from(image[9]);
    if n == 0 || n > MAX_DEVICE_ID {
        return Err(SecretsError::DeviceId);
    }
    let id = core::str::from_utf8(&image[10..10 + n]).map_err(|_| SecretsError::DeviceId)?;
    hearth_node_core::validate_node_id(id).map_err(|_| SecretsError::DeviceId)?;
    let device_id: heapless::String<MAX_DEVICE_ID> =
        id.try_into().map_err(|_| SecretsError::DeviceId)?;

    let mut key = derive_key(hmac, &device_id)?;
    let mut plain = [0u8; IMAGE_LEN];
    let result = seal::unseal(&key, &image, &device_id, &mut plain)
        .map_err(SecretsError::Unseal)
        .and_then(|json| {
            let mut scratch = [0u8; MAX_CA_PEM];
            let s = Secrets::decode(json, &mut scratch).map_err(|_| SecretsError::Json);
            scratch.fill(0);
            s
        });
    key.fill(0);
    plain.fill(0);
    let secrets = result?;
    if secrets.mqtt_username.as_str() != device_id.as_str() {
        return Err(SecretsError::UsernameMismatch);
    }
    Ok(Loaded { device_id, secrets })
}

fn read_partition(flash: FLASH<'_>, image: &mut [u8; IMAGE_LEN]) -> Result<(), SecretsError> {
    let mut storage = FlashStorage::new(flash);
    let mut table = [0u8; PARTITION_TABLE_MAX_LEN];
    let pt = partitions::read_partition_table(&mut storage, &mut table)
        .map_err(|_| SecretsError::PartitionTable)?;
    let entry = pt
        .iter()
        .find(|e| e.label_as_str() == PARTITION_LABEL)
        .ok_or(SecretsError::NoPartition)?;
    if (entry.len() as usize) < IMAGE_LEN {
        return Err(SecretsError::PartitionTooSmall(entry.len()));
    }
    storage
        .read(entry.offset(), image)
        .map_err(|_| SecretsError::FlashRead)
}

/// K_seal from the HMAC peripheral ("upstream" mode: the message in, the
/// MAC out) under the eFuse key in [`EFUSE_KEY`].
fn derive_key(hmac: HMAC<'_>, device_id: &str) -> Result<[u8; 32], SecretsError> {
    let mut msg = [0u8; MAX_HMAC_MESSAGE];
    let msg = seal::hmac_message(device_id, &mut msg).map_err(|_| SecretsError::DeviceId)?;
    let mut hw = Hmac::new(hmac);
    hw.init();
    nb::block!(hw.configure(HmacPurpose::ToUser, EFUSE_KEY)).map_err(|_| SecretsError::EfuseKey)?;
    let mut remaining = msg;
    while !remaining.is_empty() {
        remaining = nb::block!(hw.update(remaining)).unwrap_or(&[]);
    }
    let mut key = [0u8; 32];
    let _ = nb::block!(hw.finalize(&mut key));
    Ok(key)
}
