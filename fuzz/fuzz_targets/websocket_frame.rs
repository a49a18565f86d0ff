//! WebSocket command layer: a text frame, `id`/`type`, command fields.
//! The parsing is in `hearth::fuzzing::websocket_frame` (so a regression test can
//! call it without libFuzzer).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth::fuzzing::websocket_frame(data));
