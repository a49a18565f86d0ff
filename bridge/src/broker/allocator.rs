//! One allocator setting, for MQTT payload buffers.
//!
//! glibc's malloc serves blocks above its mmap threshold (128 KiB) with
//! `mmap`, given back to the OS when freed; but after such a block is freed
//! it raises the threshold to that block's size, so from then on 200 KB
//! payloads (and the buffers that read them) come from its heap arenas,
//! which keep freed memory. Under a flood of large MQTT payloads the
//! bridge's RSS then grew to several times what it held, and stayed there
//! when the flood stopped (`benches/flood.rs`: peak 136–298 MiB over three
//! runs with the dynamic threshold, 112 MiB with it fixed; BENCHMARKS.md).
//! Fixing the threshold keeps large payloads on `mmap`. Only glibc on Linux
//! has this behaviour and this knob; elsewhere this does nothing.

/// Blocks at least this big are `mmap`ed and unmapped when freed: glibc's
/// own default, made fixed. Well below the largest MQTT payload (256 KiB)
/// and above every small allocation the bridge makes per message.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`]. Call once at start
/// (mallopt takes glibc's arena lock, so threads already running are safe;
/// only allocations made before the call keep the old policy). A `GLIBC_TUNABLES=glibc.malloc.mmap_threshold`
/// set by the user is overridden.
pub fn give_large_buffers_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc parameter; called at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Gives the free memory of every malloc arena back to the OS
/// (`malloc_trim(0)`, which also releases free pages inside the arenas).
/// Called once the bridge has started: compiling plugins (the first start,
/// before the code cache has them) frees about 15 MiB of compiler memory
/// that glibc otherwise keeps in its arenas for good (`benches/scale.rs`:
/// 79.5 → 65.0 MiB with five plugins; a start from the code cache is at
/// 42.5 MiB). Elsewhere than glibc on Linux this does nothing.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it takes the arenas' locks.
    unsafe {
        libc::malloc_trim(0);
    }
}
