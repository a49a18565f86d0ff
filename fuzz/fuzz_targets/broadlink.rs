//! Broadlink IR gateway: discovery replies, command packets, RM4 frames.
//! The parsing is in `hearth::fuzzing::broadlink` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::broadlink(data));
