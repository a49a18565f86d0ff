//! A Jinja2 template (HA's template language), rendered against an empty house.
//! The parsing is in `hearth::fuzzing::template` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::template(data));
