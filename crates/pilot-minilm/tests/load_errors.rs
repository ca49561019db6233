//! Loading fails with a message that names the file and says how to fetch the model.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests may unwrap: a panic is the failure report.

use std::path::PathBuf;

use pilot_minilm::{LoadError, MODEL_FILES, MiniLm};

/// A fresh, empty directory under the system temp dir, unique to this test.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pilot-minilm-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn missing_directory_says_how_to_fetch() {
    let dir = scratch_dir("missing").join("nothing-here");
    let Err(err) = MiniLm::load(&dir) else {
        panic!("loading from an empty path succeeded");
    };
    assert!(matches!(err, LoadError::Missing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cargo xtask fetch-model"), "{message}");
    assert!(message.contains("nothing-here"), "{message}");
}

#[test]
fn each_missing_file_is_named() {
    for missing in MODEL_FILES {
        let dir = scratch_dir(&format!("one-missing-{}", missing.name));
        for file in MODEL_FILES.iter().filter(|f| f.name != missing.name) {
            std::fs::write(dir.join(file.name), b"placeholder").unwrap();
        }
        let Err(err) = MiniLm::load(&dir) else {
            panic!("loaded without {}", missing.name);
        };
        let message = err.to_string();
        assert!(message.contains(missing.name), "{message}");
        assert!(message.contains("missing"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn altered_file_is_refused_with_both_checksums() {
    let dir = scratch_dir("altered");
    for file in MODEL_FILES {
        std::fs::write(dir.join(file.name), b"not the published file").unwrap();
    }
    let Err(err) = MiniLm::load(&dir) else {
        panic!("loaded altered files");
    };
    let LoadError::Altered {
        path,
        expected,
        found,
    } = &err
    else {
        panic!("expected Altered, got {err:?}");
    };
    assert!(MODEL_FILES.iter().any(|f| f.sha256 == *expected));
    assert!(path.starts_with(&dir));
    assert_eq!(found, &pilot_minilm::sha256_hex(b"not the published file"));
    let message = err.to_string();
    assert!(message.contains("altered"), "{message}");
    assert!(message.contains("cargo xtask fetch-model"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_truncated_weights_file_is_refused() {
    // Needs the real tokenizer and config (their checksums are checked first).
    // A missing model skips on a developer's machine and fails under CI=true or
    // PILOT_REQUIRE_MINILM=1 (pilot-data's one rule for missing inputs).
    let skip = |why: String| {
        if let Err(fail) = pilot_data::Input::MiniLm.missing(&why) {
            panic!("{fail}");
        }
    };
    let real = match pilot_minilm::resolve_model_dir(None) {
        Ok(dir) => dir,
        Err(e) => return skip(format!("a_truncated_weights_file_is_refused: {e}")),
    };
    let (Ok(tokenizer), Ok(config), Ok(weights)) = (
        std::fs::read(real.join("tokenizer.json")),
        std::fs::read(real.join("config.json")),
        std::fs::read(real.join("model.safetensors")),
    ) else {
        return skip(format!(
            "a_truncated_weights_file_is_refused: the model is not fetched in {} (cargo xtask \
             fetch-model)",
            real.display()
        ));
    };
    let dir = scratch_dir("truncated");
    std::fs::write(dir.join("tokenizer.json"), tokenizer).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    let Err(err) = MiniLm::load(&dir) else {
        panic!("loaded a truncated weights file");
    };
    assert!(
        matches!(&err, LoadError::Altered { path, .. } if path.ends_with("model.safetensors")),
        "{err:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
