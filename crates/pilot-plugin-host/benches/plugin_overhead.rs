//! Plugin vs native: hashing embedder on a 100-character query, LinUCB select at d = 16, K = 11,
//! instantiation time, and the host's memory per instance. Needs `cargo xtask plugins` first.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_core::{ArmId, ArmScore, Embedder, Policy, PolicyExt};
use pilot_embed::hashing::HashingEmbedder;
use pilot_plugin_host::{
    CompiledPlugin, Limits, PluginEmbedder, PluginEngine, PluginPolicy, locate,
};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

const QUERY: &str =
    "Which geologic process is most likely responsible for forming the canyon walls?";
const D: usize = 16;
const K: usize = 11;

fn load(name: &str) -> Option<CompiledPlugin> {
    match locate::find(name) {
        Ok(path) => {
            let engine = PluginEngine::new(Limits::default()).unwrap();
            Some(engine.load_file(path).unwrap())
        }
        Err(why) => {
            eprintln!("skipping plugin benches: {why}");
            None
        }
    }
}

fn query_100() -> String {
    let mut q = QUERY.repeat(2);
    q.truncate(100);
    q
}

fn embed(c: &mut Criterion) {
    let Some(plugin) = load("hash-embedder") else {
        return;
    };
    let text = query_100();
    assert_eq!(text.chars().count(), 100);
    let mut native = HashingEmbedder::new(256).unwrap();
    let mut wasm = PluginEmbedder::new(&plugin, "d=256").unwrap();
    let mut out = vec![0.0f32; 256];
    let mut group = c.benchmark_group("hash_embed_100_chars_d256");
    group.bench_function("native", |b| {
        b.iter(|| native.embed(black_box(&text), &mut out).unwrap())
    });
    group.bench_function("plugin", |b| {
        b.iter(|| wasm.embed(black_box(&text), &mut out).unwrap())
    });
    group.finish();
}

fn contexts(n: usize) -> Vec<Vec<f32>> {
    let mut rng = Pcg64::seed_from_u64(3);
    (0..n)
        .map(|_| {
            (0..D)
                .map(|_| (rng.next_u32() as f32 / u32::MAX as f32) - 0.5)
                .collect()
        })
        .collect()
}

fn select(c: &mut Criterion) {
    let Some(plugin) = load("linucb-policy") else {
        return;
    };
    let mut native = LinUcbVec::new(LinUcb::params().check().unwrap(), K, D).unwrap();
    let mut wasm = PluginPolicy::new(&plugin, &format!("d={D} k={K}")).unwrap();
    let xs = contexts(256);
    for (i, x) in xs.iter().enumerate() {
        let arm = ArmId::new(i % K);
        let r = (i % 3) as f32 / 2.0;
        native.observe(arm, x, r).unwrap();
        wasm.observe(arm, x, r).unwrap();
    }
    let mut scores = [ArmScore::default(); K];
    let mut rng = Pcg64::seed_from_u64(9);
    let mut group = c.benchmark_group("linucb_select_d16_k11");
    let mut i = 0usize;
    group.bench_function("native", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            native
                .select(black_box(&xs[i]), &mut rng, &mut scores)
                .unwrap()
        })
    });
    group.bench_function("plugin", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            wasm.select(black_box(&xs[i]), &mut rng, &mut scores)
                .unwrap()
        })
    });
    group.bench_function("native_update", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            native.observe(ArmId::new(i % K), &xs[i], 0.5).unwrap()
        })
    });
    group.bench_function("plugin_update", |b| {
        b.iter(|| {
            i = (i + 1) % xs.len();
            wasm.observe(ArmId::new(i % K), &xs[i], 0.5).unwrap()
        })
    });
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let (Some(embedder), Some(policy)) = (load("hash-embedder"), load("linucb-policy")) else {
        return;
    };
    let mut group = c.benchmark_group("instantiate");
    group.bench_function("hash_embedder", |b| {
        b.iter(|| PluginEmbedder::new(&embedder, "d=256").unwrap())
    });
    group.bench_function("linucb_policy_d16_k11", |b| {
        b.iter(|| PluginPolicy::new(&policy, "d=16 k=11").unwrap())
    });
    group.finish();
    memory_per_instance(&embedder, &policy);
}

/// Resident memory the host gains per live instance (Linux `/proc/self/statm`), printed.
fn memory_per_instance(embedder: &CompiledPlugin, policy: &CompiledPlugin) {
    fn rss_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4096)
    }
    const N: usize = 100;
    let Some(before) = rss_bytes() else {
        eprintln!("memory per instance: /proc/self/statm unavailable");
        return;
    };
    let embedders: Vec<_> = (0..N)
        .map(|_| {
            let mut e = PluginEmbedder::new(embedder, "d=256").unwrap();
            e.embed_vec(QUERY).unwrap();
            e
        })
        .collect();
    let mid = rss_bytes().unwrap_or(before);
    let policies: Vec<_> = (0..N)
        .map(|_| PluginPolicy::new(policy, "d=16 k=11").unwrap())
        .collect();
    let after = rss_bytes().unwrap_or(mid);
    eprintln!(
        "memory per instance (RSS growth over {N} live instances): hash embedder {:.1} KiB, \
         LinUCB d=16 K=11 {:.1} KiB",
        (mid.saturating_sub(before)) as f64 / N as f64 / 1024.0,
        (after.saturating_sub(mid)) as f64 / N as f64 / 1024.0,
    );
    drop((embedders, policies));
}

criterion_group!(benches, embed, select, instantiate);
criterion_main!(benches);
