//! Where the read-only shared data lives beside the checkout, for tests, benches and examples.

use std::path::PathBuf;

/// The embedder id of the `*.minilm.f32` files.
pub const MINILM_ID: &str = "all-MiniLM-L6-v2";

/// The dimension of the `*.minilm.f32` files.
pub const MINILM_DIM: usize = 384;

/// The embedder id to record for vectors read from `path` (`dim` values per row) when the user
/// named none: [`MINILM_ID`] only for a 384-value file named `*.minilm.f32` (the shared data's
/// convention), otherwise `unnamed:d=<dim>`, which claims nothing. Vectors from
/// `pilot embed --model hash` should be named by the id it prints (`hash-v1:d=256`).
pub fn default_embedder_id(path: &std::path::Path, dim: usize) -> String {
    let minilm_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".minilm.f32"));
    if minilm_name && dim == MINILM_DIM {
        MINILM_ID.to_owned()
    } else {
        format!("unnamed:d={dim}")
    }
}

/// The shared data folder: `$PILOT_SHARED_DATA` when set, else `../shared/data` beside the
/// repository root (resolved from this crate's manifest directory at compile time).
pub fn shared_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PILOT_SHARED_DATA") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// A file in the shared data folder, or `Err(reason)` saying why it is not there, so a test can
/// print the reason and skip.
///
/// # Errors
/// A sentence naming the missing path.
pub fn shared_file(name: &str) -> Result<PathBuf, String> {
    let path = shared_data_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "shared data file {} is missing (set PILOT_SHARED_DATA or place ../shared/data beside the checkout)",
            path.display()
        ))
    }
}

/// A shared input that some tests need and a bare clone may lack. When it is missing, a test
/// skips (printing why) on a developer's machine, and fails when the run says the input must be
/// there: `CI=true` (or `CI=1`) for every input, or the input's own variable set to `1`
/// ([`Input::variable`]). One rule for every test that reads `shared/data` or the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// The files of the shared data folder ([`shared_data_dir`]); `PILOT_REQUIRE_DATA=1`.
    Data,
    /// The all-MiniLM-L6-v2 model files (`cargo xtask fetch-model`); `PILOT_REQUIRE_MINILM=1`.
    MiniLm,
}

impl Input {
    /// The variable that makes this input required when set to `1`.
    pub fn variable(self) -> &'static str {
        match self {
            Self::Data => "PILOT_REQUIRE_DATA",
            Self::MiniLm => "PILOT_REQUIRE_MINILM",
        }
    }

    /// Which setting requires this input (`"CI=true"`, `"PILOT_REQUIRE_DATA=1"`, …), reading
    /// the environment through `var`; `None`: a missing input is a skip.
    pub fn required_by(self, var: impl Fn(&str) -> Option<String>) -> Option<String> {
        let ci = var("CI").unwrap_or_default();
        if ci.eq_ignore_ascii_case("true") || ci == "1" {
            return Some(format!("CI={ci}"));
        }
        (var(self.variable()).as_deref() == Some("1")).then(|| format!("{}=1", self.variable()))
    }

    /// [`required_by`](Self::required_by) on this process's environment.
    pub fn required(self) -> Option<String> {
        self.required_by(|name| std::env::var(name).ok())
    }

    /// What a test does when this input is missing (`why` names what is missing and where):
    /// `Ok(())` after printing `skipping: why`, or, when the run requires the input, `Err`
    /// with `why` and the setting that requires it (the test fails with it).
    ///
    /// # Errors
    /// The message the test fails with when the input is required.
    pub fn missing(self, why: &str) -> Result<(), String> {
        self.missing_when(self.required(), why)
    }

    /// [`missing`](Self::missing) with the requirement given (for tests of this rule).
    ///
    /// # Errors
    /// When `required` is `Some`.
    pub fn missing_when(self, required: Option<String>, why: &str) -> Result<(), String> {
        match required {
            Some(setting) => Err(format!(
                "{why}; {setting} requires it (a missing input fails the run, it is not skipped)"
            )),
            None => {
                eprintln!(
                    "skipping: {why} (CI=true or {}=1 would make this a failure)",
                    self.variable()
                );
                Ok(())
            }
        }
    }

    /// `found` as `Some`, or its error through [`missing`](Self::missing): `Ok(None)` means
    /// skip, `Err` means fail.
    ///
    /// # Errors
    /// As [`missing`](Self::missing).
    pub fn or_skip<T>(self, found: Result<T, String>) -> Result<Option<T>, String> {
        match found {
            Ok(value) => Ok(Some(value)),
            Err(why) => self.missing(&why).map(|()| None),
        }
    }
}

/// A file of the shared data folder under the [`Input::Data`] rule: `Ok(Some(path))` when it
/// is there, `Ok(None)` (skip, reason printed) or `Err` (the run requires the data) when not.
///
/// ```
/// # fn main() -> Result<(), String> {
/// let Some(path) = pilot_data::shared_input("routerbench-3k.jsonl")? else {
///     return Ok(()); // a bare clone: skipped, and said so
/// };
/// assert!(path.is_file());
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`Input::missing`].
pub fn shared_input(name: &str) -> Result<Option<PathBuf>, String> {
    Input::Data.or_skip(shared_file(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn ci_or_the_inputs_own_variable_requires_it() {
        assert_eq!(Input::Data.required_by(env(&[])), None);
        assert_eq!(Input::Data.required_by(env(&[("CI", "false")])), None);
        assert_eq!(
            Input::Data.required_by(env(&[("CI", "true")])).as_deref(),
            Some("CI=true")
        );
        assert!(Input::MiniLm.required_by(env(&[("CI", "1")])).is_some());
        assert_eq!(
            Input::Data
                .required_by(env(&[("PILOT_REQUIRE_DATA", "1")]))
                .as_deref(),
            Some("PILOT_REQUIRE_DATA=1")
        );
        // Each variable requires its own input only.
        assert_eq!(
            Input::MiniLm.required_by(env(&[("PILOT_REQUIRE_DATA", "1")])),
            None
        );
        assert!(
            Input::MiniLm
                .required_by(env(&[("PILOT_REQUIRE_MINILM", "1")]))
                .is_some()
        );
        assert_eq!(
            Input::Data.required_by(env(&[("PILOT_REQUIRE_DATA", "0")])),
            None
        );
    }

    #[test]
    fn missing_skips_or_fails_with_the_reason_and_the_setting() {
        assert_eq!(Input::Data.missing_when(None, "no file"), Ok(()));
        let e = Input::Data
            .missing_when(Some("CI=true".into()), "shared data file x is missing")
            .unwrap_err();
        assert!(e.contains("shared data file x is missing"), "{e}");
        assert!(e.contains("CI=true"), "{e}");
    }
}
