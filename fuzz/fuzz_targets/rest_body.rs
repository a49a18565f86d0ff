//! REST: `POST /api/states/<entity_id>` bodies (first line: the entity id), path segments.
//! The parsing is in `hearth::fuzzing::rest_body` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::rest_body(data));
