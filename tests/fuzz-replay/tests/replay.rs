//! Replays every saved fuzz input through its oracle (an ordinary stable `cargo test`), and
//! checks that the target table and `fuzz/fuzz_targets/` agree.

use pilot_fuzz_replay::{TARGETS, fuzz_dir, replay};

#[test]
fn every_saved_input_passes_its_oracle() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let (count, failed) = replay(target.name, target.oracle).unwrap();
        println!("{}: {count} saved inputs replayed", target.name);
        failures.extend(failed);
    }
    assert!(
        failures.is_empty(),
        "failing saved inputs:\n{}",
        failures.join("\n")
    );
}

#[test]
fn table_matches_the_fuzz_targets() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|t| t.name.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "fuzz/fuzz_targets and pilot_fuzz_replay::TARGETS differ"
    );
    for target in TARGETS {
        let source = std::fs::read_to_string(dir.join(format!("{}.rs", target.name))).unwrap();
        assert!(
            source.contains(target.calls),
            "fuzz target {} does not call {}",
            target.name,
            target.calls
        );
    }
}

#[test]
fn every_target_has_saved_inputs() {
    for target in TARGETS {
        let files = pilot_fuzz_replay::saved_inputs(target.name).unwrap();
        assert!(
            !files.is_empty(),
            "fuzz target {} has no seeds or regressions",
            target.name
        );
    }
}

/// `cargo test -p pilot-fuzz-replay -- --ignored write_seeds` regenerates `fuzz/seeds/`
/// (run by `cargo xtask fuzz --seeds`).
#[test]
#[ignore = "writes fuzz/seeds; run through `cargo xtask fuzz --seeds`"]
fn write_seeds() {
    for target in TARGETS {
        let n = pilot_fuzz_replay::write_seeds(target).unwrap();
        println!("{}: {n} seeds written", target.name);
    }
}
