//! Embedder plugins: the hashing plugin equals the native embedder bit for bit, and every
//! misbehaviour becomes a named error after which the embedder keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use pilot_core::{Detail, Embedder, ErrorKind};
use pilot_embed::hashing::HashingEmbedder;
use pilot_plugin_host::{Limits, PluginEmbedder, PluginEngine, PluginError, PluginKind};

const TEXTS: &[&str] = &[
    "Which geologic process is most likely responsible for the formation of the Grand Canyon?",
    "def fizzbuzz(n): return [str(i) for i in range(1, n + 1)]",
    "Ünïcödé — 漢字 and emoji 🚀 mixed with ASCII",
    "a",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
];

#[test]
fn hash_plugin_is_bit_identical_to_native() {
    let Some(plugin) = common::load("hash-embedder", Limits::default()) else {
        return;
    };
    assert_eq!(plugin.kind(), PluginKind::Embedder);
    for dim in [16usize, 256, 384] {
        let mut wasm = PluginEmbedder::new(&plugin, &format!("d={dim}")).unwrap();
        let mut native = HashingEmbedder::new(dim).unwrap();
        assert_eq!(wasm.id(), native.id());
        assert_eq!(wasm.dim(), dim);
        for text in TEXTS {
            let mut a = vec![0.0f32; dim];
            let mut b = vec![0.0f32; dim];
            wasm.embed(text, &mut a).unwrap();
            native.embed(text, &mut b).unwrap();
            let a_bits: Vec<u32> = a.iter().map(|v| v.to_bits()).collect();
            let b_bits: Vec<u32> = b.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a_bits, b_bits, "dim {dim}, text {text:?}");
        }
    }
}

#[test]
fn hash_plugin_reports_the_native_error_kinds() {
    let Some(plugin) = common::load("hash-embedder", Limits::default()) else {
        return;
    };
    let mut wasm = PluginEmbedder::new(&plugin, "d=32").unwrap();
    let mut native = HashingEmbedder::new(32).unwrap();
    let mut out = [0.0f32; 32];
    let native_err = native.embed("", &mut out).unwrap_err();
    let wasm_err = wasm.embed("", &mut out).unwrap_err();
    assert_eq!(wasm_err.kind(), native_err.kind());
    assert!(matches!(
        wasm.last_error(),
        Some(PluginError::Reported { .. })
    ));
    // The caller's buffer is checked before the plugin is called.
    let err = wasm.embed("hello", &mut [0.0; 31]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    // A configuration the plugin cannot use is its own named error.
    let err = PluginEmbedder::new(&plugin, "d=0").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
    let err = PluginEmbedder::new(&plugin, "colour=blue").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter, "{err}");
}

/// Embeds `text`, expecting failure of `kind`, then checks the embedder still works.
fn fails_then_recovers(embedder: &mut PluginEmbedder, text: &str, kind: ErrorKind) -> PluginError {
    let mut out = vec![0.0f32; embedder.dim()];
    let err = embedder.embed(text, &mut out).unwrap_err();
    assert_eq!(err.kind(), kind, "{text}: {:?}", embedder.last_error());
    let detailed = embedder.last_error().cloned().unwrap();
    let mut again = vec![0.0f32; embedder.dim()];
    embedder
        .embed("a perfectly normal question", &mut again)
        .unwrap();
    assert!(again.iter().all(|v| v.is_finite()));
    detailed
}

#[test]
fn every_misbehaviour_is_named_and_the_embedder_keeps_working() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let Some(plugin) = common::load("misbehaving-embedder", limits) else {
        return;
    };
    let mut e = PluginEmbedder::new(&plugin, "d=8").unwrap();
    let mut reference = vec![0.0f32; 8];
    e.embed("a perfectly normal question", &mut reference)
        .unwrap();

    let err = fails_then_recovers(&mut e, "loop", ErrorKind::PluginOutOfFuel);
    assert!(err.to_string().contains("out of fuel"), "{err}");
    let err = fails_then_recovers(&mut e, "alloc", ErrorKind::PluginMemoryLimit);
    assert!(
        err.to_string().contains("memory limit of 16777216 bytes"),
        "{err}"
    );
    let err = fails_then_recovers(&mut e, "panic", ErrorKind::PluginTrap);
    assert!(err.to_string().contains("model.embed"), "{err}");
    assert_eq!(e.restarts(), 3);

    let err = fails_then_recovers(&mut e, "dim", ErrorKind::PluginOutput);
    assert!(
        matches!(
            err,
            PluginError::Output {
                detail: Detail::Mismatch {
                    expected: 8,
                    found: 7
                },
                ..
            }
        ),
        "{err}"
    );
    let err = fails_then_recovers(&mut e, "nan", ErrorKind::PluginOutput);
    assert!(err.to_string().contains("NaN"), "{err}");
    let err = fails_then_recovers(&mut e, "huge", ErrorKind::PluginOutput);
    assert!(err.to_string().contains("outside"), "{err}");
    let err = fails_then_recovers(&mut e, "refuse", ErrorKind::OutOfRange);
    assert!(err.to_string().contains("refused"), "{err}");
    // Output errors and refusals do not poison the instance.
    assert_eq!(e.restarts(), 3);

    let mut after = vec![0.0f32; 8];
    e.embed("a perfectly normal question", &mut after).unwrap();
    assert_eq!(after, reference);
}

#[test]
fn a_slow_plugin_hits_the_wall_clock_deadline() {
    let limits = Limits {
        fuel_per_call: u64::MAX / 4,
        deadline: Duration::from_millis(50),
        tick: Duration::from_millis(5),
        ..Limits::default()
    };
    let Some(plugin) = common::load("misbehaving-embedder", limits) else {
        return;
    };
    let mut e = PluginEmbedder::new(&plugin, "").unwrap();
    let started = std::time::Instant::now();
    let err = fails_then_recovers(&mut e, "loop", ErrorKind::PluginTimeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("deadline of 50ms"), "{err}");
}

#[test]
fn an_old_abi_is_refused_by_name() {
    let Some(path) = common::plugin_path("old-abi") else {
        return;
    };
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let err = engine.load_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginAbi);
    let text = err.to_string();
    assert!(text.contains("pilot:plugin/embedder@0.0.1"), "{text}");
    assert!(text.contains("0.1.0"), "{text}");
}

#[test]
fn a_policy_is_not_an_embedder() {
    let Some(plugin) = common::load("misbehaving-policy", Limits::default()) else {
        return;
    };
    let err = PluginEmbedder::new(&plugin, "").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PluginAbi);
    assert!(err.to_string().contains("not an embedder"), "{err}");
}

#[test]
fn files_that_are_not_components_are_named() {
    let dir = std::env::temp_dir().join(format!("pilot-plugin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let core = dir.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let text = dir.join("notes.wasm");
    std::fs::write(&text, b"these are not the bytes you are looking for").unwrap();
    let engine = PluginEngine::new(Limits::default()).unwrap();
    for (path, needle) in [(&core, "core wasm module"), (&text, "no wasm magic")] {
        let err = engine.load_file(path).unwrap_err();
        assert!(matches!(err, PluginError::NotAComponent { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
