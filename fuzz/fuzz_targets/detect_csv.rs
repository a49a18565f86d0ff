//! `hearth detect` CSV input.
//! The parsing is in `hearth::fuzzing::detect_csv` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::detect_csv(data));
