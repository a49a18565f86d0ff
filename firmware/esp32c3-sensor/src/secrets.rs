//! Sealed secrets: the `hearth_sec` flash partition (format v1, node-core's
//! `seal`), opened with a key the ESP32-C3's HMAC peripheral derives from the
//! eFuse key in BLOCK_KEY4 (purpose HMAC_UP). Software never sees the eFuse
//! key, only `K_seal = HMAC-SHA256(K_efuse, b"hearth-seal-v1:" || device_id)`.
//! The opening itself is in `unseal` (hardware-free, host-tested).
//!
//! Any failure is an error: the caller does not start Wi-Fi (fail closed).

use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_hal::{
    hmac::{Hmac, HmacPurpose, KeyId},
    peripherals::{FLASH, HMAC},
};
use esp_storage::FlashStorage;
use hearth_node_core::seal::{self, IMAGE_LEN, MAX_HMAC_MESSAGE};

pub use crate::unseal::{Loaded, PARTITION_LABEL, SecretsError};

/// The eFuse key block holding K_efuse (burnt with purpose HMAC_UP).
pub const EFUSE_KEY: KeyId = KeyId::Key4;

/// Reads and opens the sealed partition.
pub fn load(flash: FLASH<'_>, hmac: HMAC<'_>) -> Result<Loaded, SecretsError> {
    let mut image = [0u8; IMAGE_LEN];
    read_partition(flash, &mut image)?;
    crate::unseal::open_image(&image, |id| derive_key(hmac, id))
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
