//! `cargo xtask no-std`: every crate marked `[package.metadata.pilot] no_std = true` built alone
//! for a bare-metal target with default features off, then the no-allocator smoke firmware
//! (`tests/no-std-smoke`) built, linked and run in QEMU.
//!
//! A library build alone passes even with a stray `extern crate alloc` behind a default-off
//! feature; linking a binary with no global allocator is what proves the core needs none.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Runner, cargo, members, workspace_root};

/// The bare-metal target: Cortex-M4F, no OS, no allocator.
pub const TARGET: &str = "thumbv7em-none-eabihf";
/// The plugin target: the same crates are reused inside wasm guests.
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The emulator and its arguments for the firmware; the ELF path follows `-kernel`.
const QEMU: &str = "qemu-system-arm";
const QEMU_ARGS: [&str; 9] = [
    "-machine",
    "mps2-an386",
    "-cpu",
    "cortex-m4",
    "-nographic",
    "-semihosting-config",
    "enable=on,target=native",
    "-monitor",
    "none",
];
/// The firmware finishes in well under a second; a hang (a missed semihosting exit) is a
/// failure, not a stuck CI run.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds the no_std crates and runs the smoke firmware; returns false for unknown arguments.
pub fn run(runner: &mut Runner, args: &[String]) -> bool {
    if !args.is_empty() {
        return false;
    }
    let root = workspace_root();
    build_each_crate(runner, &root);
    smoke(runner, &root);
    true
}

/// `cargo build -p X --target thumbv7em-none-eabihf --no-default-features`, one crate at a time
/// so that no crate is rescued by features another one turns on.
fn build_each_crate(runner: &mut Runner, root: &Path) {
    let crates = match members(root) {
        Ok(all) => all
            .into_iter()
            .filter(|m| m.pilot_metadata["no_std"].as_bool() == Some(true))
            .map(|m| m.name)
            .collect::<Vec<_>>(),
        Err(err) => {
            eprintln!("xtask no-std: {err}");
            runner.fail("no-std: cargo metadata");
            return;
        }
    };
    if crates.is_empty() {
        eprintln!("xtask no-std: no member has [package.metadata.pilot] no_std = true");
        runner.fail("no-std: no crates marked no_std");
        return;
    }
    eprintln!("xtask no-std: crates marked no_std: {}", crates.join(", "));
    for target in [TARGET, WASM_TARGET] {
        for name in &crates {
            runner.run(
                &format!("no-std build {name} ({target})"),
                cargo().args([
                    "build",
                    "-p",
                    name,
                    "--target",
                    target,
                    "--no-default-features",
                ]),
            );
        }
    }
}

/// Builds the firmware (its own workspace), then runs it in QEMU when QEMU is installed.
///
/// Cargo commands run inside `tests/no-std-smoke`, whose `.cargo/config.toml` sets the target
/// and the linker script; cargo reads that file from the working directory, not the manifest.
fn smoke(runner: &mut Runner, root: &Path) {
    let dir = root.join("tests/no-std-smoke");
    runner.run_in("no-std-smoke fmt", &dir, cargo().args(["fmt", "--check"]));
    runner.run_in(
        "no-std-smoke clippy",
        &dir,
        cargo().args(["clippy", "--release", "--", "-D", "warnings"]),
    );
    let Some(elf) = build_firmware(runner, &dir) else {
        return;
    };
    if !qemu_available() {
        let msg = format!(
            "xtask no-std: `{QEMU}` NOT FOUND: the smoke firmware was built and linked but NOT RUN \
             (install it: apt-get install qemu-system-arm)"
        );
        eprintln!("\n!!! {msg}\n");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            runner.fail("no-std-smoke run: qemu-system-arm missing under CI=true");
        }
        return;
    }
    run_firmware(runner, &elf);
}

/// `cargo build --release` of the firmware in `dir`; returns the ELF path cargo reports.
fn build_firmware(runner: &mut Runner, dir: &Path) -> Option<PathBuf> {
    let label = "no-std-smoke build (no global allocator)";
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(dir)
    .stderr(Stdio::inherit());
    eprintln!("\n==> {label}: {cmd:?}");
    let out = match cmd.output() {
        Ok(out) => out,
        Err(err) => {
            eprintln!("xtask: could not start cargo: {err}");
            runner.fail(label);
            return None;
        }
    };
    if !out.status.success() {
        runner.fail(label);
        return None;
    }
    let elf = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "no-std-smoke")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    if elf.is_none() {
        eprintln!("xtask no-std: cargo reported no executable for no-std-smoke");
        runner.fail(label);
    }
    elf
}

fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the firmware; passes when QEMU exits 0 and the firmware printed its all-passed line.
fn run_firmware(runner: &mut Runner, elf: &Path) {
    let label = "no-std-smoke run (qemu mps2-an386)";
    let mut cmd = Command::new(QEMU);
    cmd.args(QEMU_ARGS)
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("\n==> {label}: {cmd:?}");
    let (ok, output) = match run_with_timeout(&mut cmd, QEMU_TIMEOUT) {
        Ok(result) => result,
        Err(err) => {
            eprintln!("xtask no-std: {err}");
            runner.fail(label);
            return;
        }
    };
    print!("{output}");
    let summary = output
        .lines()
        .find(|l| l.starts_with("no-std-smoke:") && l.contains("passed"));
    let all_passed = summary.is_some_and(|l| l.ends_with(", 0 failed"));
    if !ok || !all_passed {
        eprintln!(
            "xtask no-std: firmware {} (summary: {})",
            if ok {
                "exited 0"
            } else {
                "failed or timed out"
            },
            summary.unwrap_or("missing")
        );
        runner.fail(label);
    }
}

/// Runs `cmd`, killing it after `limit`; returns (exited successfully, its stdout).
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Result<(bool, String), String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > limit => {
                eprintln!("xtask no-std: {cmd:?} still running after {limit:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    };
    let text = reader.join().unwrap_or_default();
    Ok((status.is_some_and(|s| s.success()), text))
}
