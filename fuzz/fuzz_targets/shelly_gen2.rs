//! Shelly Gen2: RPC NotifyStatus frames, responses, online, switch status, EM/EM1, limits.
//! The parsing is in `hearth::fuzzing::shelly_gen2` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::shelly_gen2(data));
