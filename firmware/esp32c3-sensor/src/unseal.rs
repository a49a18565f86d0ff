//! Opening a sealed image (node-core's `seal` format v1) once its key is
//! known: the hardware-free half of `secrets` (host-tested in
//! `host-test/tests/unseal.rs`, with node-core's software `derive_key` in
//! place of the HMAC peripheral).

use core::fmt;

use hearth_node_core::seal::{self, IMAGE_LEN, MAX_CA_PEM, MAX_DEVICE_ID, Secrets};

/// Label of the partition in `partitions.csv`.
pub const PARTITION_LABEL: &str = "hearth_sec";

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

/// Opens `image`: the device id from its header, `K_seal` from `derive`
/// (given the id), node-core's `unseal`, then the JSON. Key and plaintext
/// buffers are wiped before returning.
pub fn open_image(
    image: &[u8; IMAGE_LEN],
    derive: impl FnOnce(&str) -> Result<[u8; 32], SecretsError>,
) -> Result<Loaded, SecretsError> {
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

    let mut key = derive(&device_id)?;
    let mut plain = [0u8; IMAGE_LEN];
    let result = seal::unseal(&key, image, &device_id, &mut plain)
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
