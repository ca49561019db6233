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

/// No control character of any kind, and at most `max` bytes.
fn printable(text: &str, max: usize) {
    assert!(
        !text.chars().any(|c| c.is_control()),
        "control characters in {text:?}"
    );
    assert!(text.len() <= max, "{} bytes", text.len());
}

#[test]
fn a_huge_declared_dimension_is_refused_before_the_host_allocates() {
    let Some(plugin) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    // 2^20 is what the ABI allows; the host's own limit is far lower.
    let err = PluginEmbedder::new(&plugin, "d=1048576").unwrap_err();
    assert!(matches!(err, PluginError::HostLimit { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::CapacityExceeded);
    let text = err.to_string();
    for needle in [
        "misbehaving_embedder.wasm",
        "dimension 1048576",
        "limit of 8192",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    // Within the dimension limit, a table is checked against the host's output budget before
    // it is embedded.
    let e = PluginEmbedder::new(&plugin, "d=4096").unwrap();
    e.reserve_rows(3000).unwrap();
    let small = plugin
        .with_limits(Limits {
            output_table_bytes: 16 << 20,
            ..Limits::default()
        })
        .unwrap();
    let e = PluginEmbedder::new(&small, "d=4096").unwrap();
    e.reserve_rows(1024).unwrap();
    let err = e.reserve_rows(3000).unwrap_err();
    let text = err.to_string();
    for needle in [
        "misbehaving_embedder.wasm",
        "3000 rows of embedding dimension 4096",
        "limit of 16777216 bytes",
        "at most 1024 rows fit",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
}

#[test]
fn plugin_strings_are_escaped_and_capped() {
    let Some(plugin) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    let e = PluginEmbedder::new(&plugin, "").unwrap();
    assert_eq!(e.id(), "misbehaving-v1");
    assert_eq!(e.id_problem(), None);

    let e = PluginEmbedder::new(&plugin, "id=evil").unwrap();
    printable(e.id(), 400);
    assert!(
        e.id()
            .contains("\\nresult:  every check passed\\r\\u{1b}[8m"),
        "{}",
        e.id()
    );
    assert!(e.id_problem().unwrap().contains("control"));
    let e = PluginEmbedder::new(&plugin, "id=long").unwrap();
    printable(e.id(), 400);
    assert!(
        e.id()
            .ends_with(&format!("[{} more bytes]", (4 << 20) - 256))
    );
    assert!(e.id_problem().unwrap().contains("4194304 characters"));
    let e = PluginEmbedder::new(&plugin, "id=empty").unwrap();
    assert_eq!(e.id_problem(), Some("its id is empty"));

    let err = PluginEmbedder::new(&plugin, "create=evil").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    printable(&err.to_string(), 400);
    assert!(err.to_string().contains("\\u{1b}[8m"), "{err}");
    let err = PluginEmbedder::new(&plugin, "create=long").unwrap_err();
    printable(&err.to_string(), 1200);
    assert!(err.to_string().contains("more bytes]"), "{err}");

    let mut e = PluginEmbedder::new(&plugin, "").unwrap();
    let err = e.embed_vec("refuse-evil").unwrap_err();
    printable(&err.to_string(), 400);
    assert!(err.to_string().contains("\\nresult:"), "{err}");
}

#[test]
fn traps_keep_their_reason() {
    let Some(plugin) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    let mut e = PluginEmbedder::new(&plugin, "").unwrap();
    let err = fails_then_recovers(&mut e, "recurse", ErrorKind::PluginTrap);
    let text = err.to_string();
    assert!(text.contains("call stack exhausted"), "{text}");
    assert_eq!(text.matches("plugin trapped").count(), 1, "{text}");
    printable(&text, 3000);
    let err = fails_then_recovers(&mut e, "panic", ErrorKind::PluginTrap);
    let text = err.to_string();
    assert!(
        text.contains("unreachable") && text.contains("panicked"),
        "{text}"
    );
}

#[test]
fn the_wasm32_ceiling_is_named_instead_of_the_configured_cap() {
    let limits = Limits {
        memory_bytes: 8 << 30,
        ..Limits::default()
    };
    let Some(plugin) = common::load("misbehaving-embedder", limits) else {
        return;
    };
    let mut e = PluginEmbedder::new(&plugin, "").unwrap();
    let err = fails_then_recovers(&mut e, "grow4g", ErrorKind::PluginMemoryLimit);
    assert!(matches!(err, PluginError::MemoryCeiling { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("wasm32's 4 GiB address space"), "{text}");
    assert!(!text.contains("memory limit of 8589934592"), "{text}");
    // Under a cap below 4 GiB, the cap is what stops it, and is quoted.
    let Some(capped) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    let mut e = PluginEmbedder::new(&capped, "").unwrap();
    let err = fails_then_recovers(&mut e, "grow4g", ErrorKind::PluginMemoryLimit);
    assert!(
        err.to_string().contains("memory limit of 67108864 bytes"),
        "{err}"
    );
}

#[test]
fn a_wrong_function_type_under_the_right_name_is_an_abi_mismatch() {
    let Some(path) = common::plugin_path("wrong-type") else {
        return;
    };
    // Refused on load, before anything is instantiated, naming the function and both types.
    let err = common::engine().load_file(&path).unwrap_err();
    assert!(matches!(err, PluginError::Abi(_)), "{err}");
    let text = err.to_string();
    for needle in [
        "ABI mismatch",
        "`[method]model.dim` of `pilot:plugin/embedder@0.1.0` has the wrong type",
        "expected `func(self: borrow<model>) -> u32`",
        "found `func(self: borrow<model>) -> u64`",
    ] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
    assert!(
        !text.contains("trapped") && !text.contains("instantiate"),
        "{text}"
    );
}

#[test]
fn degenerate_embedders_are_caught_on_the_table() {
    let Some(plugin) = common::load("misbehaving-embedder", Limits::default()) else {
        return;
    };
    for (config, needle) in [
        ("out=zero", "norm 0"),
        ("out=subnormal", "subnormal"),
        ("out=same", "are the same"),
    ] {
        let mut e = PluginEmbedder::new(&plugin, config).unwrap();
        let mut table = Vec::new();
        for text in TEXTS {
            // Each vector on its own is valid output.
            table.extend(e.embed_vec(text).unwrap());
        }
        let err = pilot_plugin_host::validate::embedding_spread(&table, e.dim()).unwrap_err();
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
    let mut e = PluginEmbedder::new(&plugin, "").unwrap();
    let table: Vec<f32> = TEXTS.iter().flat_map(|t| e.embed_vec(t).unwrap()).collect();
    pilot_plugin_host::validate::embedding_spread(&table, e.dim()).unwrap();
}
