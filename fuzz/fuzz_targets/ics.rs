//! An iCalendar feed, parsed and expanded over a week.
//! The parsing is in `hearth::fuzzing::ics` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::ics(data));
