//! ESP32 sensor node: `hearth-node/<id>/<kind>` topic, then its payload.
//! The parsing is in `hearth::fuzzing::esp32_node` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::esp32_node(data));
