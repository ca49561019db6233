//! `cargo xtask plugins`: builds every guest in `plugins/` in one cargo invocation for
//! wasm32-unknown-unknown (linked into components by wasm-component-ld, see
//! `plugins/.cargo/config.toml`) and copies them to `target/plugins/<crate>.wasm`, where the
//! host's tests, benches and the `pilot` tool find them.

use std::path::Path;

use crate::util::{Runner, cargo, members, workspace_root};

/// Where the built components land, relative to the repository root.
pub const OUT_DIR: &str = "target/plugins";

/// Builds and collects the plugins; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    if !args.is_empty() {
        return false;
    }
    let root = workspace_root();
    let plugins = root.join("plugins");
    let guest_target = plugins.join("target");
    // Run inside plugins/ so cargo reads plugins/.cargo/config.toml (target and linker); pin the
    // target dir so a CARGO_TARGET_DIR meant for the host workspace does not move the guests.
    let built = runner.run_in(
        "plugins: build guests",
        &plugins,
        cargo()
            .args([
                "build",
                "--release",
                "--workspace",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .env("CARGO_TARGET_DIR", &guest_target),
    );
    if !built {
        return true;
    }
    let crates = match members(&plugins) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("xtask plugins: {e}");
            runner.fail("plugins: list guest crates");
            return true;
        }
    };
    let out = root.join(OUT_DIR);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("xtask plugins: cannot create {}: {e}", out.display());
        runner.fail("plugins: create output dir");
        return true;
    }
    let release = guest_target.join("wasm32-unknown-unknown/release");
    for member in crates {
        let file = format!("{}.wasm", member.name.replace('-', "_"));
        copy(runner, &release.join(&file), &out.join(&file));
    }
    true
}

fn copy(runner: &mut Runner, from: &Path, to: &Path) {
    match std::fs::copy(from, to) {
        Ok(bytes) => eprintln!("xtask plugins: {} ({bytes} bytes)", to.display()),
        Err(e) => {
            eprintln!("xtask plugins: cannot copy {}: {e}", from.display());
            runner.fail(format!("plugins: copy {}", from.display()));
        }
    }
}
