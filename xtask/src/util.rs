//! Shared helpers for tasks: running commands, collecting failures, workspace metadata.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Runs commands, remembers which failed, and reports them all at the end.
#[derive(Default)]
pub struct Runner {
    failures: Vec<String>,
}

impl Runner {
    /// Runs `cmd` (echoed first) in the workspace root; records a failure by `label`.
    pub fn run(&mut self, label: &str, cmd: &mut Command) -> bool {
        self.run_in(label, &workspace_root(), cmd)
    }

    /// Runs `cmd` in `dir` (where cargo reads its `.cargo/config.toml` from); records a
    /// failure by `label`.
    pub fn run_in(&mut self, label: &str, dir: &Path, cmd: &mut Command) -> bool {
        cmd.current_dir(dir);
        eprintln!("\n==> {label}: {cmd:?}");
        let ok = match cmd.status() {
            Ok(status) => status.success(),
            Err(err) => {
                eprintln!("xtask: could not start {cmd:?}: {err}");
                false
            }
        };
        if !ok {
            self.failures.push(label.to_string());
        }
        ok
    }

    /// Records a failure found without running a command.
    pub fn fail(&mut self, label: impl Into<String>) {
        self.failures.push(label.into());
    }

    /// Prints the summary and turns it into the process exit code.
    pub fn report(&self) -> ExitCode {
        if self.failures.is_empty() {
            eprintln!("\nxtask: all steps passed");
            ExitCode::SUCCESS
        } else {
            eprintln!("\nxtask: {} step(s) failed:", self.failures.len());
            for f in &self.failures {
                eprintln!("  - {f}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// `cargo`, honouring the `CARGO` variable cargo sets for its children.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// One workspace member as `cargo metadata` reports it.
#[allow(dead_code)]
pub struct Member {
    /// Package name.
    pub name: String,
    /// Path of its Cargo.toml.
    pub manifest: PathBuf,
    /// Names of its features.
    pub features: Vec<String>,
    /// Its `package.metadata.pilot` table, if any (e.g. `{"no_std": true}`).
    pub pilot_metadata: serde_json::Value,
    /// Names of its dependencies of every kind (normal, dev, build).
    pub dependencies: Vec<String>,
}

/// The members of the workspace rooted at `root`, from `cargo metadata` (no hand-kept list).
pub fn members(root: &Path) -> Result<Vec<Member>, String> {
    let out = cargo()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    Ok(packages
        .iter()
        .map(|p| Member {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            manifest: PathBuf::from(p["manifest_path"].as_str().unwrap_or_default()),
            features: p["features"]
                .as_object()
                .map(|f| f.keys().cloned().collect())
                .unwrap_or_default(),
            pilot_metadata: p["metadata"]["pilot"].clone(),
            dependencies: p["dependencies"]
                .as_array()
                .map(|deps| {
                    deps.iter()
                        .filter_map(|d| d["name"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect())
}

/// Names of the workspace members that depend on `dependency` (any kind: normal, dev, build).
pub fn members_depending_on(root: &Path, dependency: &str) -> Result<Vec<String>, String> {
    Ok(members(root)?
        .into_iter()
        .filter(|m| m.dependencies.iter().any(|d| d == dependency))
        .map(|m| m.name)
        .collect())
}
