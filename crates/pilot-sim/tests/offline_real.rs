//! The offline-optimum reference on the real RouterBench data: every query of the largest
//! dataset as one knapsack (3 178 queries × 11 LLMs) through the exact solver with no special
//! casing, and the exact solver against the plain DP over weights on a slice small enough for it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_budget::owned::{Exact, WeightDp};
use pilot_data::{Embeddings, MINILM_DIM, RoutingDataset, shared_file};
use pilot_sim::Problem;
use pilot_sim::data::problem_from_rows;
use pilot_sim::offline::offline_optimum;

/// The problem with `deployment` rows of the RouterBench file, or `None` (printing why) when
/// the shared data is missing.
fn routerbench(deployment: impl Fn(usize) -> bool) -> Option<Problem> {
    let (data, emb) = match (
        shared_file("routerbench-3k.jsonl"),
        shared_file("routerbench-3k.minilm.f32"),
    ) {
        (Ok(d), Ok(e)) => (d, e),
        (d, e) => {
            eprintln!("skipped: {:?} {:?}", d.err(), e.err());
            return None;
        }
    };
    let dataset = RoutingDataset::load(data).unwrap();
    let embeddings = Embeddings::load(emb, MINILM_DIM).unwrap();
    let rows: Vec<usize> = (0..dataset.rows.len()).collect();
    let deploy: Vec<usize> = rows.iter().copied().filter(|&i| deployment(i)).collect();
    Some(problem_from_rows(&dataset, &embeddings, &rows[..10], &deploy).unwrap())
}

/// Total cost of the best single LLM over the deployment queries.
fn reference_cost(p: &Problem) -> f64 {
    p.single_llm(p.best_single_llm()).1 * p.deployment().len() as f64
}

#[test]
fn offline_optimum_on_every_routerbench_query() {
    let Some(p) = routerbench(|_| true) else {
        return;
    };
    assert!(p.deployment().len() > 3000);
    let reference = reference_cost(&p);
    let mut last = 0.0;
    for frac in [0.018, 0.025, 0.04, 0.07] {
        let budget = frac * reference;
        let mut exact = Exact::new();
        let t = std::time::Instant::now();
        let (q, c) = offline_optimum(&p, budget, &mut exact).unwrap();
        eprintln!(
            "budget {frac} × best LLM: quality {q} cost {c:.4} of {budget:.4} in {:?}, {} states \
             kept (peak {}), {:.1} MB",
            t.elapsed(),
            exact.stats().states_kept,
            exact.stats().peak_states,
            exact.memory_bytes() as f64 / f64::from(1 << 20),
        );
        assert!(
            c <= budget * (1.0 + 1e-12),
            "budget {frac}: cost {c} > {budget}"
        );
        assert!(q >= last, "more budget, less quality: {q} < {last}");
        last = q;
    }
}

#[test]
fn offline_optimum_equals_the_plain_dp_on_a_slice() {
    let Some(p) = routerbench(|i| i % 20 == 3) else {
        return;
    };
    let reference = reference_cost(&p);
    for frac in [0.02, 0.03, 0.05] {
        let budget = frac * reference;
        let (q_exact, c_exact) = offline_optimum(&p, budget, &mut Exact::new()).unwrap();
        let (q_dp, _) = offline_optimum(&p, budget, &mut WeightDp::new()).unwrap();
        assert_eq!(q_exact, q_dp, "budget {frac}");
        assert!(c_exact <= budget * (1.0 + 1e-12));
    }
}
