//! The config file: TOML → Config → validate.
//! The parsing is in `hearth::fuzzing::config` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::config(data));
