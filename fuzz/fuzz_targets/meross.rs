//! Meross plug: a signed answer, then each namespace's payload reader.
//! The parsing is in `hearth::fuzzing::meross` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::meross(data));
