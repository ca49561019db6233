//! The exact solver's scaling suite (issue 20): every generated instance kind at 100 × 10,
//! 1 000 × 50 and 10 000 × 20 items, capacity ratios 0.25 / 0.5 / 0.75, coefficient range
//! R = 100 000. Prints one row per instance: time (fastest and slowest of the runs), memory
//! (the solver's scratch, and the process's peak resident set during the solve where Linux
//! reports it) and the states kept.
//!
//! `cargo bench -p pilot-budget --features testkit --bench mckp_suite -- [--runs N]
//! [--size MxN]... [--kind NAME]... [--ratio R]... [--range R] [--seed S]... [--sweep N]
//! [--reuse]` (also `cargo xtask mckp-suite`). `--seed S` solves the instance `pilot mckp
//! generate --seed S` prints (one row per seed) instead of the suite's own; `--sweep N` solves
//! those of seeds 1..=N once each and prints one row per kind, size and ratio: the spread of
//! the times and how many missed the target (1 s at 1 000 × 50, 5 s at 10 000 × 20).
//! Each run uses a fresh `owned::Exact` (its first solve includes growing its
//! buffers), or with `--reuse` one solver for all runs of an instance (later runs start with
//! the buffers the first grew).
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Instant;

use pilot_budget::InstanceKind;
use pilot_budget::owned::{Exact, Lp, OwnedInstance};
use pilot_core::MckpSolver;
use rand_core::SeedableRng;
use rand_pcg::Pcg64Mcg;

const SIZES: [(usize, usize); 3] = [(100, 10), (1000, 50), (10_000, 20)];
const RATIOS: [f64; 3] = [0.25, 0.5, 0.75];
const RANGE: u64 = 100_000;

/// Resident-set figures from `/proc/self/status` in kB (`None` off Linux).
fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of this thread in seconds (`/proc/thread-self/schedstat`, Linux), which other
/// processes on the machine do not inflate the way they do wall time.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Resets the peak resident set to the current one (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut runs = 3usize;
    let mut sizes: Vec<(usize, usize)> = Vec::new();
    let mut kinds: Vec<InstanceKind> = Vec::new();
    let mut ratios: Vec<f64> = Vec::new();
    let mut range = RANGE;
    let mut reuse = false;
    let mut seeds: Vec<u64> = Vec::new();
    let mut sweep_seeds = 0u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--size" => {
                let s = it.next().expect("--size MxN");
                let (m, n) = s.split_once('x').expect("--size MxN");
                sizes.push((m.parse().expect("M"), n.parse().expect("N")));
            }
            "--kind" => {
                let k = it.next().expect("--kind NAME");
                kinds.push(
                    *InstanceKind::ALL
                        .iter()
                        .find(|x| x.name() == k)
                        .expect("a kind name"),
                );
            }
            "--ratio" => ratios.push(it.next().and_then(|r| r.parse().ok()).expect("--ratio R")),
            "--reuse" => reuse = true,
            "--seed" => seeds.push(it.next().and_then(|s| s.parse().ok()).expect("--seed S")),
            "--sweep" => {
                sweep_seeds = it.next().and_then(|s| s.parse().ok()).expect("--sweep N");
            }
            "--range" => range = it.next().and_then(|r| r.parse().ok()).expect("--range R"),
            other => panic!("mckp_suite: unknown argument {other}"),
        }
    }
    if sizes.is_empty() {
        sizes = SIZES.to_vec();
    }
    if kinds.is_empty() {
        kinds = InstanceKind::ALL.to_vec();
    }
    if ratios.is_empty() {
        ratios = RATIOS.to_vec();
    }
    if sweep_seeds > 0 {
        sweep(&sizes, &kinds, &ratios, range, sweep_seeds);
        return;
    }
    let seeds: Vec<Option<u64>> = if seeds.is_empty() {
        vec![None]
    } else {
        seeds.into_iter().map(Some).collect()
    };
    println!(
        "| kind | m × n | ratio | capacity | time ms (min–max of {runs}) | CPU ms (min–max) | scratch MB | peak RSS MB | \
         classes added | items tried | passes | peak states | states kept | records (peak) | rank-table cuts | optimum | LP bound | cardinality bound | exchange rounds | neighbourhood | settled first |"
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for &(m, n) in &sizes {
        for &kind in &kinds {
            for (&ratio, &cli_seed) in ratios
                .iter()
                .flat_map(|r| seeds.iter().map(move |s| (r, s)))
            {
                let r = (ratio * 4.0) as usize;
                let seed = (m * 131 + n) as u128 * 1000 + kind as u128 * 10 + r as u128;
                // The suite's own seed, or the CLI's (`pilot mckp generate --seed`).
                let mut rng = cli_seed.map_or(Pcg64Mcg::new(0x20_5eed ^ seed), |s| {
                    Pcg64Mcg::seed_from_u64(s)
                });
                let mut inst =
                    OwnedInstance::generate(kind, m, n, range, &mut rng).expect("generate");
                inst.set_capacity_ratio(ratio).expect("ratio");
                let name = cli_seed.map_or(kind.name().to_string(), |s| {
                    format!("{} (seed {s})", kind.name())
                });
                let view = inst.view().expect("view");
                let mut choice = vec![0; m];
                let bound = Lp::new().relax(&view, &mut choice).expect("lp").bound;
                let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
                let (mut cpu_lo, mut cpu_hi) = (f64::INFINITY, 0.0f64);
                let mut value = f64::NAN;
                let mut peak_rss = None;
                let mut last = None;
                let mut solver = Exact::new();
                for _ in 0..runs {
                    if !reuse {
                        solver = Exact::new();
                    }
                    let base = reset_peak().then(|| status_kb("VmRSS:")).flatten();
                    let cpu0 = cpu_seconds();
                    let t = Instant::now();
                    let solution = solver.solve(&view, &mut choice);
                    let secs = t.elapsed().as_secs_f64();
                    if let (Some(a), Some(b)) = (cpu0, cpu_seconds()) {
                        cpu_lo = cpu_lo.min(b - a);
                        cpu_hi = cpu_hi.max(b - a);
                    }
                    let peak = status_kb("VmHWM:");
                    if let (Some(b), Some(p)) = (base, peak) {
                        let mb = p.saturating_sub(b) as f64 / 1024.0;
                        peak_rss = Some(peak_rss.map_or(mb, |x: f64| x.max(mb)));
                    }
                    match solution {
                        Ok(s) => value = s.value,
                        Err(e) => {
                            println!(
                                "| {name} | {m} × {n} | {ratio} | {} | FAILED: {e} |",
                                inst.capacity
                            );
                            break;
                        }
                    }
                    lo = lo.min(secs);
                    hi = hi.max(secs);
                    let scratch = solver.memory_bytes() + n * m * 2 * 48 + m * 64;
                    last = Some((solver.stats(), solver.start_stats(), scratch));
                }
                let Some((stats, start, scratch)) = last else {
                    continue;
                };
                println!(
                    "| {} | {m} × {n} | {ratio} | {} | {:.1}–{:.1} | {:.1}–{:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
                    name,
                    inst.capacity,
                    lo * 1e3,
                    hi * 1e3,
                    cpu_lo * 1e3,
                    cpu_hi * 1e3,
                    scratch as f64 / (1 << 20) as f64,
                    peak_rss.map_or("n/a".to_string(), |x| format!("{x:.1}")),
                    stats.classes_added,
                    stats.items_tried,
                    stats.passes,
                    stats.peak_states,
                    stats.states_kept,
                    stats.peak_records,
                    stats.outside_cuts,
                    value,
                    bound,
                    start
                        .cardinality_bound
                        .map_or("—".to_string(), |b| format!("{b:.1}")),
                    start.exchange_rounds,
                    start
                        .neighbourhood
                        .map_or("—".to_string(), |v| v.to_string()),
                    if start.settled { "yes" } else { "no" },
                );
            }
        }
    }
}

/// The time target for an instance size, in seconds (none for 100 × 10).
fn target_seconds(m: usize, n: usize) -> Option<f64> {
    match (m, n) {
        (1000, 50) => Some(1.0),
        (10_000, 20) => Some(5.0),
        _ => None,
    }
}

/// `--sweep N`: the instances `pilot mckp generate --seed S` prints for S in 1..=N, each solved
/// once by a fresh solver; one row per kind, size and ratio.
fn sweep(sizes: &[(usize, usize)], kinds: &[InstanceKind], ratios: &[f64], range: u64, n: u64) {
    println!(
        "| kind | m × n | ratio | seeds | median ms | 90th percentile ms | max ms (seed) | \
         most states kept | over the target |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &(m, n_items) in sizes {
        for &kind in kinds {
            for &ratio in ratios {
                let mut times = Vec::new();
                let (mut worst, mut most_states, mut over) = ((0.0f64, 0u64), 0u64, 0usize);
                for seed in 1..=n {
                    let mut rng = Pcg64Mcg::seed_from_u64(seed);
                    let mut inst = OwnedInstance::generate(kind, m, n_items, range, &mut rng)
                        .expect("generate");
                    inst.set_capacity_ratio(ratio).expect("ratio");
                    let view = inst.view().expect("view");
                    let mut choice = vec![0; m];
                    let mut solver = Exact::new();
                    let t = Instant::now();
                    solver.solve(&view, &mut choice).expect("solve");
                    let secs = t.elapsed().as_secs_f64();
                    times.push(secs);
                    if secs > worst.0 {
                        worst = (secs, seed);
                    }
                    most_states = most_states.max(solver.stats().states_kept);
                    over += usize::from(target_seconds(m, n_items).is_some_and(|t| secs > t));
                }
                times.sort_by(f64::total_cmp);
                let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize] * 1e3;
                println!(
                    "| {} | {m} × {n_items} | {ratio} | {n} | {:.0} | {:.0} | {:.0} ({}) | {} | {} |",
                    kind.name(),
                    at(0.5),
                    at(0.9),
                    worst.0 * 1e3,
                    worst.1,
                    most_states,
                    target_seconds(m, n_items).map_or("—".to_string(), |_| over.to_string()),
                );
            }
        }
    }
}
