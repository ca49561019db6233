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
    use pilot_plugin_host::PluginEmbedder;

    const SAMPLES: &[&str] = &[
        "Which geologic process formed the Grand Canyon?",
        "def add(a, b): return a + b",
        "Ünïcödé, 漢字 and 🚀",
    ];
    let mut embedder = PluginEmbedder::new(plugin, config)?;
    println!("id:      {}", embedder.id());
    println!("dim:     {}", embedder.dim());
    let mut failures = 0;
    for text in SAMPLES {
        let outcome = embedder.embed_vec(text).and_then(|first| {
            let second = embedder.embed_vec(text)?;
            Ok(first == second)
        });
        let verdict = match outcome {
            Ok(true) => "ok   ".to_string(),
            Ok(false) => {
                failures += 1;
                "FAIL  not deterministic:".to_string()
            }
            Err(e) => {
                failures += 1;
                format!("FAIL  {e}:")
            }
        };
        println!("  {verdict} embed {text:?}");
    }
    Ok(failures)
}

#[cfg(feature = "plugins")]
fn check_policy(
    plugin: &pilot_plugin_host::CompiledPlugin,
    config: &str,
) -> Result<usize, pilot_plugin_host::PluginError> {
    use pilot_bandit::conformance::{KitOptions, check_policy};
    use pilot_core::Policy;
    use pilot_plugin_host::PluginPolicy;

    let probe = PluginPolicy::new(plugin, config)?;
    println!("dim:     {}", probe.dim());
    println!("arms:    {}", probe.arm_count());
    // The kit needs a fresh, identical policy per property. Starting one already worked above;
    // should a later start fail, the kit catches the panic and reports that property failed.
    #[allow(clippy::panic)]
    let make = || match PluginPolicy::new(plugin, config) {
        Ok(p) => p,
        Err(e) => panic!("cannot start the plugin policy: {e}"),
    };
    let report = check_policy(make, &KitOptions::<f32>::default());
    println!("conformance kit (pilot-bandit):");
    for c in &report.checks {
        match &c.result {
            Ok(()) => println!("  ok    {}", c.name),
            Err(why) => println!("  FAIL  {}: {why}", c.name),
        }
    }
    Ok(report.failures().count())
}
