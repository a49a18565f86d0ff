//! MQTT request/command topics and foreign discovery configs (first line: the topic).
//! The parsing is in `hearth::fuzzing::mqtt_request` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::mqtt_request(data));
