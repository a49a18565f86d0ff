//! Tasmota power strip: RESULT/STATE/SENSOR payloads, POWERn topics, per-outlet figures.
//! The parsing is in `hearth::fuzzing::tasmota` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::tasmota(data));
