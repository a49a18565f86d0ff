//! Every committed fuzz input (fuzz/corpus/<target>/: the seeds, and the
//! input of every crash a fuzz target found, kept as its regression test)
//! replayed through its target's function in `hearth::fuzzing`, on the
//! stable toolchain: `cargo test` catches a parser that panics on one of
//! them without nightly or cargo-fuzz.

use std::path::PathBuf;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("esp32_node", hearth::fuzzing::esp32_node),
    ("tasmota", hearth::fuzzing::tasmota),
    ("shelly_gen1", hearth::fuzzing::shelly_gen1),
    ("shelly_gen2", hearth::fuzzing::shelly_gen2),
    ("meross", hearth::fuzzing::meross),
    ("broadlink", hearth::fuzzing::broadlink),
    ("websocket_frame", hearth::fuzzing::websocket_frame),
    ("rest_body", hearth::fuzzing::rest_body),
    ("mqtt_request", hearth::fuzzing::mqtt_request),
    ("config", hearth::fuzzing::config),
    ("scenario", hearth::fuzzing::scenario),
    ("detect_csv", hearth::fuzzing::detect_csv),
    ("ics", hearth::fuzzing::ics),
    ("template", hearth::fuzzing::template),
];

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_fuzz_target_has_a_seed_corpus_and_a_function() {
    let dirs: Vec<String> = std::fs::read_dir(corpus())
        .expect("fuzz/corpus")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for (name, _) in TARGETS {
        assert!(dirs.iter().any(|d| d == name), "no fuzz/corpus/{name}");
    }
    for d in &dirs {
        assert!(
            TARGETS.iter().any(|(name, _)| name == d),
            "fuzz/corpus/{d} has no target here"
        );
    }
}

#[test]
fn every_committed_fuzz_input_runs_through_its_target() {
    let mut inputs = 0;
    for (name, target) in TARGETS {
        let dir = corpus().join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seeds", dir.display());
        for f in files {
            let data = std::fs::read(&f).unwrap();
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name}: {} panicked", f.display());
            inputs += 1;
        }
    }
    println!(
        "{inputs} committed fuzz inputs ran through {} targets",
        TARGETS.len()
    );
}
