//! Shelly Gen1: MQTT pushes under `shellies/<id>/` and HTTP /status, /shelly bodies.
//! The parsing is in `hearth::fuzzing::shelly_gen1` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::shelly_gen1(data));
