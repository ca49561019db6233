//! A newcomer's first hour, kept working: `cargo xtask new-plugin NAME` writes a policy plugin
//! crate that builds anywhere, and `cargo xtask newcomer` follows the docs from outside the
//! workspace exactly as a new user would:
//!
//! 1. a plugin made by `new-plugin` in a temporary directory (outside `plugins/`) is built with
//!    a plain `cargo build --release` and passes `pilot plugin check` (`docs/plugins.md`);
//! 2. a crate whose `Cargo.toml` and `src/lib.rs` are the snippets of `docs/embedded.md` (path
//!    dependencies, default features off) builds for thumbv7em-none-eabihf, and the dependency
//!    lines of the pilot-bandit and pilot-budget READMEs are the same as that snippet's.

use std::path::{Path, PathBuf};

use crate::util::{Runner, cargo, workspace_root};

const TEMPLATE_CARGO: &str = include_str!("../template/policy-plugin/Cargo.toml");
const TEMPLATE_CONFIG: &str = include_str!("../template/policy-plugin/dot-cargo/config.toml");
const TEMPLATE_LIB: &str = include_str!("../template/policy-plugin/lib.rs");

/// The configuration `newcomer` checks the template plugin with.
const TEMPLATE_CHECK_CONFIG: &str = "d=16 k=11";

/// The placeholder for the repository checkout in the docs' dependency snippets.
const CHECKOUT: &str = "../pilot-router";

/// The marker before each fenced block `newcomer` extracts from `docs/embedded.md`.
const MARKER: &str = "<!-- newcomer: ";

/// `cargo xtask new-plugin NAME [--dir DIR]`; returns false for bad arguments.
pub fn new_plugin(runner: &mut Runner, args: &[String]) -> bool {
    let (name, dir) = match args {
        [name] => (name, PathBuf::from(".")),
        [name, flag, dir] if flag == "--dir" => (name, PathBuf::from(dir)),
        _ => return false,
    };
    match write_plugin(name, &dir) {
        Ok(at) => {
            let file = name.replace('-', "_");
            eprintln!(
                "xtask new-plugin: wrote {at}\n  build: cd {at} && cargo build --release\n  \
                 check: pilot plugin check {at}/target/wasm32-unknown-unknown/release/{file}.wasm \
                 --plugin-config \"{TEMPLATE_CHECK_CONFIG}\"\n  (pilot with plugins: cargo build \
                 --release -p pilot --features plugins)",
                at = at.display()
            );
        }
        Err(e) => {
            eprintln!("xtask new-plugin: {e}");
            runner.fail("new-plugin");
        }
    }
    true
}

/// Writes the template plugin crate `name` into `dir/name`; returns its path.
fn write_plugin(name: &str, dir: &Path) -> Result<PathBuf, String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(format!(
            "`{name}` is not a crate name this template takes (lowercase letters, digits, '-', \
             '_', starting with a letter)"
        ));
    }
    let at = dir.join(name);
    if at.exists() {
        return Err(format!("{} exists already", at.display()));
    }
    let sdk = workspace_root().join("crates/pilot-plugin-sdk");
    let sdk = sdk.to_str().ok_or("the repository path is not UTF-8")?;
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{sdk}}", sdk)
    };
    let files = [
        ("Cargo.toml", fill(TEMPLATE_CARGO)),
        (".cargo/config.toml", fill(TEMPLATE_CONFIG)),
        ("src/lib.rs", fill(TEMPLATE_LIB)),
    ];
    for (file, text) in files {
        write(&at.join(file), &text)?;
    }
    Ok(at)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `cargo xtask newcomer`: both checks; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    if !args.is_empty() {
        return false;
    }
    let scratch = std::env::temp_dir().join(format!("pilot-newcomer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    plugin_from_template(runner, &scratch);
    embedded_crate(runner, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    true
}

/// The toolchain of `rust-toolchain.toml`, for cargo runs in directories outside the checkout
/// (which would otherwise get rustup's default toolchain).
fn toolchain() -> Option<String> {
    let text = std::fs::read_to_string(workspace_root().join("rust-toolchain.toml")).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("channel"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// `cargo` for a directory outside the workspace: the pinned toolchain, and a target dir under
/// the repository's `target/` so repeated runs reuse the build.
fn outside_cargo(target_dir: &str) -> std::process::Command {
    let mut cmd = cargo();
    if let Some(channel) = toolchain() {
        cmd.env("RUSTUP_TOOLCHAIN", channel);
    }
    cmd.env(
        "CARGO_TARGET_DIR",
        workspace_root().join("target").join(target_dir),
    );
    cmd
}

fn plugin_from_template(runner: &mut Runner, scratch: &Path) {
    let name = "my-policy";
    let crate_dir = match write_plugin(name, scratch) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("xtask newcomer: {e}");
            runner.fail("newcomer: write the template plugin");
            return;
        }
    };
    // Exactly what docs/plugins.md says to run in the new crate.
    let built = runner.run_in(
        "newcomer: build the template plugin outside plugins/",
        &crate_dir,
        outside_cargo("newcomer-plugin").args(["build", "--release"]),
    );
    if !built {
        return;
    }
    let wasm = workspace_root()
        .join("target/newcomer-plugin/wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    runner.run(
        "newcomer: pilot plugin check on the template plugin",
        cargo()
            .args([
                "run",
                "--quiet",
                "-p",
                "pilot",
                "--features",
                "plugins",
                "--",
                "plugin",
                "check",
            ])
            .arg(&wasm)
            .args(["--plugin-config", TEMPLATE_CHECK_CONFIG]),
    );
}

/// The fenced block after `<!-- newcomer: WHAT -->` in `text`.
fn block<'t>(text: &'t str, what: &str) -> Result<&'t str, String> {
    let marker = format!("{MARKER}{what} -->");
    let after = text
        .split_once(&marker)
        .ok_or(format!("no `{marker}` marker"))?
        .1;
    let fence = after
        .find("```")
        .ok_or(format!("no code block after {marker}"))?;
    let body = &after[fence..];
    let start = body.find('\n').ok_or("an unterminated code block")? + 1;
    let end = body[start..]
        .find("\n```")
        .ok_or("an unterminated code block")?;
    Ok(&body[start..start + end + 1])
}

/// The `pilot-*` dependency lines of every ```toml block of `text`.
fn dependency_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_toml = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_toml = t == "```toml";
            continue;
        }
        if in_toml && (t.starts_with("pilot-") || t.starts_with("rand_")) {
            lines.push(t.to_string());
        }
    }
    lines
}

fn embedded_crate(runner: &mut Runner, scratch: &Path) {
    let label = "newcomer: a crate from docs/embedded.md builds for thumbv7em-none-eabihf";
    let root = workspace_root();
    let made = (|| -> Result<PathBuf, String> {
        let doc_path = root.join("docs/embedded.md");
        let doc = std::fs::read_to_string(&doc_path)
            .map_err(|e| format!("cannot read {}: {e}", doc_path.display()))?;
        let deps = block(&doc, "Cargo.toml").map_err(|e| format!("docs/embedded.md: {e}"))?;
        let lib = block(&doc, "src/lib.rs").map_err(|e| format!("docs/embedded.md: {e}"))?;
        // The crate READMEs show the same dependency lines as the embedded guide.
        let guide = dependency_lines(&format!("```toml\n{deps}```\n"));
        for readme in [
            "crates/pilot-bandit/README.md",
            "crates/pilot-budget/README.md",
        ] {
            let text = std::fs::read_to_string(root.join(readme))
                .map_err(|e| format!("cannot read {readme}: {e}"))?;
            let lines = dependency_lines(&text);
            if lines.is_empty() {
                return Err(format!("{readme} has no dependency snippet"));
            }
            if let Some(other) = lines.iter().find(|l| !guide.contains(l)) {
                return Err(format!(
                    "{readme}: dependency line `{other}` differs from docs/embedded.md's"
                ));
            }
        }
        let checkout = root.to_str().ok_or("the repository path is not UTF-8")?;
        let manifest = format!(
            "[package]\nname = \"newcomer-firmware\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n{}",
            deps.replace(CHECKOUT, checkout)
        );
        let dir = scratch.join("newcomer-firmware");
        write(&dir.join("Cargo.toml"), &manifest)?;
        write(&dir.join("src/lib.rs"), lib)?;
        Ok(dir)
    })();
    let dir = match made {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("xtask newcomer: {e}");
            runner.fail(label);
            return;
        }
    };
    runner.run_in(
        label,
        &dir,
        outside_cargo("newcomer-embedded").args([
            "build",
            "--release",
            "--target",
            crate::no_std::TARGET,
        ]),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_after_their_marker() {
        let doc = "x\n<!-- newcomer: a -->\n```toml\nk = 1\n```\n<!-- newcomer: b -->\n\n```rust\nfn f() {}\n```\n";
        assert_eq!(block(doc, "a").ok(), Some("k = 1\n"));
        assert_eq!(block(doc, "b").ok(), Some("fn f() {}\n"));
        assert!(block(doc, "c").is_err());
    }

    #[test]
    fn the_template_fills_every_placeholder() {
        for text in [TEMPLATE_CARGO, TEMPLATE_CONFIG, TEMPLATE_LIB] {
            let filled = text
                .replace("{{name}}", "n")
                .replace("{{crate}}", "n")
                .replace("{{sdk}}", "/s");
            assert!(!filled.contains("{{"), "{filled}");
        }
    }
}
