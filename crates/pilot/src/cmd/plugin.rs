//! `pilot plugin check FILE.wasm`: load a plugin, say what it is, and test it like a native one.
//!
//! Without the `plugins` feature the command explains how to rebuild.

use std::path::PathBuf;
use std::process::ExitCode;

/// Subcommands of `pilot plugin`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Load a plugin component, report its world, ABI version and dimension, and run the checks:
    /// the policy conformance kit for a policy, determinism and output checks for an embedder.
    /// Exit status 0 when every check passes, 1 when one fails, 2 when the plugin cannot load.
    Check(CheckArgs),
}

/// Arguments of `pilot plugin check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// The component (`cargo xtask plugins` builds ours into target/plugins/).
    pub file: PathBuf,
    /// The plugin's configuration string, e.g. `d=16 k=11` for the LinUCB plugin.
    #[arg(long, default_value = "")]
    pub plugin_config: String,
    /// Fuel (about one unit per wasm instruction) per call.
    #[arg(long, default_value_t = 200_000_000)]
    pub fuel: u64,
    /// Wall-clock limit per call, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub deadline_ms: u64,
    /// Cap on the plugin's linear memory, in MiB.
    #[arg(long, default_value_t = 64)]
    pub memory_mib: usize,
}

/// Runs a `pilot plugin` subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check(args) => check(&args),
    }
}

#[cfg(not(feature = "plugins"))]
fn check(_args: &CheckArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this `pilot` was built without plugin support; rebuild it with \
         `cargo build --release -p pilot --features plugins`"
    )
}

#[cfg(feature = "plugins")]
fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    use pilot_plugin_host::{Limits, PluginEngine, PluginKind};

    let limits = Limits {
        fuel_per_call: args.fuel,
        deadline: std::time::Duration::from_millis(args.deadline_ms),
        memory_bytes: args.memory_mib.saturating_mul(1 << 20),
        ..Limits::default()
    };
    let engine = PluginEngine::new(limits)?;
    let plugin = match engine.load_file(&args.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("plugin:  {}", args.file.display());
    println!("world:   {}", plugin.kind());
    println!("abi:     pilot:plugin@{}", plugin.abi_version());
    let failures = match plugin.kind() {
        PluginKind::Embedder => check_embedder(&plugin, &args.plugin_config),
        PluginKind::Policy => check_policy(&plugin, &args.plugin_config),
    };
    match failures {
        Ok(0) => {
            println!("result:  every check passed");
            Ok(ExitCode::SUCCESS)
        }
        Ok(n) => {
            println!("result:  {n} check(s) failed");
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

#[cfg(feature = "plugins")]
fn check_embedder(
    plugin: &pilot_plugin_host::CompiledPlugin,
    config: &str,
) -> Result<usize, pilot_plugin_host::PluginError> {
    use pilot_core::Embedder;
    use pilot_plugin_host::{PluginEmbedder, validate};

    const SAMPLES: &[&str] = &[
        "Which geologic process formed the Grand Canyon?",
        "def add(a, b): return a + b",
        "Ünïcödé, 漢字 and 🚀",
    ];
    let mut embedder = PluginEmbedder::new(plugin, config)?;
    // The id is the plugin's string: the host keeps it escaped and cut, so it prints safely.
    println!("id:      {}", embedder.id());
    println!("dim:     {}", embedder.dim());
    let mut failures = 0;
    match embedder.id_problem() {
        Some(problem) => {
            failures += 1;
            println!("  FAIL  id: {problem}");
        }
        None => println!("  ok    id"),
    }
    let mut table = Vec::with_capacity(SAMPLES.len() * embedder.dim());
    let mut all_embedded = true;
    for text in SAMPLES {
        let outcome = embedder.embed_vec(text).and_then(|first| {
            let second = embedder.embed_vec(text)?;
            Ok((first == second, first))
        });
        let verdict = match outcome {
            Ok((true, v)) => {
                table.extend_from_slice(&v);
                "ok   ".to_string()
            }
            Ok((false, _)) => {
                failures += 1;
                all_embedded = false;
                "FAIL  not deterministic:".to_string()
            }
            Err(e) => {
                failures += 1;
                all_embedded = false;
                format!("FAIL  {e}:")
            }
        };
        println!("  {verdict} embed {text:?}");
    }
    // Each vector can be valid and the set useless: all zero, subnormal, or one vector for
    // every text. Whatever is fitted on them (a prior's PCA) would fail far from the cause.
    if all_embedded {
        match validate::embedding_spread(&table, embedder.dim()) {
            Ok(()) => println!("  ok    the sample texts embed to distinct, non-zero vectors"),
            Err(e) => {
                failures += 1;
                println!("  FAIL  {e}");
            }
        }
    }
    Ok(failures)
}

#[cfg(feature = "plugins")]
fn check_policy(
    plugin: &pilot_plugin_host::CompiledPlugin,
    config: &str,
) -> Result<usize, pilot_plugin_host::PluginError> {
    use std::sync::{Arc, Mutex};

    use pilot_bandit::conformance::{KitOptions, check_policy};
    use pilot_core::Policy;
    use pilot_plugin_host::PluginPolicy;

    use super::plugin_trace::{Traced, cause_of};

    let probe = PluginPolicy::new(plugin, config)?;
    println!("dim:     {}", probe.dim());
    println!("arms:    {}", probe.arm_count());
    let log = Arc::new(Mutex::new(Vec::new()));
    // The kit needs a fresh, identical policy per property. Starting one already worked above;
    // should a later start fail, the kit catches the panic and reports that property failed.
    #[allow(clippy::panic)]
    let make = || match PluginPolicy::new(plugin, config) {
        Ok(p) => Traced::new(p, Arc::clone(&log)),
        Err(e) => panic!("cannot start the plugin policy: {e}"),
    };
    let report = check_policy(make, &KitOptions::<f32>::default());
    println!("conformance kit (pilot-bandit):");
    let mut from = 0;
    for c in &report.checks {
        match &c.result {
            Ok(()) => println!("  ok    {}", c.name),
            Err(why) => {
                println!("  FAIL  {}: {why}", c.name);
                // The kit sees the short core error; the host's detailed one names the arm,
                // the field, the trap's reason.
                if let Some(cause) = cause_of(&log, why, &mut from) {
                    println!("        cause: {cause}");
                }
            }
        }
    }
    let mut failures = report.failures().count();
    println!("host limits:");
    match check_checkpoints(plugin, config, probe.dim(), probe.arm_count()) {
        Ok(line) => println!("  ok    {line}"),
        Err(why) => {
            failures += 1;
            println!("  FAIL  {why}");
        }
    }
    Ok(failures)
}

/// Drives one policy through enough updates for the host to checkpoint it
/// `checkpoint_failures + 1` times, and fails if any checkpoint failed: a snapshot that traps,
/// loops or errors would otherwise only show in a long run (as the policy failing for good).
#[cfg(feature = "plugins")]
fn check_checkpoints(
    plugin: &pilot_plugin_host::CompiledPlugin,
    config: &str,
    dim: usize,
    arms: usize,
) -> Result<String, String> {
    use pilot_core::ArmId;
    use pilot_plugin_host::PluginPolicy;

    let limits = plugin.limits();
    let every = limits.checkpoint_every;
    let updates = every.saturating_mul(limits.checkpoint_failures + 1);
    let mut policy = PluginPolicy::new(plugin, config)
        .map_err(|e| format!("checkpoints: cannot start the policy: {e}"))?;
    let mut context = vec![0.0f32; dim];
    for i in 0..updates {
        // Small, varied, deterministic contexts and rewards in [0, 1].
        for (j, v) in context.iter_mut().enumerate() {
            *v = (((i * 7 + j * 3) % 11) as f32 - 5.0) / 10.0;
        }
        let arm = ArmId(u32::try_from(i % arms).unwrap_or(0));
        let reward = (i % 5) as f32 / 4.0;
        if let Err(e) = policy.observe(arm, &context, reward) {
            return Err(format!(
                "checkpoints: update {} of {updates} failed: {e}",
                i + 1
            ));
        }
        if policy.checkpoint_failures() > 0 {
            let cause = policy
                .last_error()
                .map_or_else(|| "unknown".to_owned(), |e| e.to_string());
            return Err(format!(
                "checkpoints: the host's checkpoint after update {} failed (the policy fails \
                 for good after {} in a row): {cause}",
                i + 1,
                limits.checkpoint_failures
            ));
        }
    }
    Ok(format!(
        "checkpoints: {updates} updates, snapshotted every {every} (journal at most {} \
         updates / {} bytes)",
        limits.journal_len, limits.journal_bytes
    ))
}
