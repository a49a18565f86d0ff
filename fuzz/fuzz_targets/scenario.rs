//! A `hearth simulate` scenario file.
//! The parsing is in `hearth::fuzzing::scenario` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::scenario(data));
