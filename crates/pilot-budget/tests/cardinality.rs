//! The exact solver's first phase: the cardinality bound never cuts off the optimum, and it
//! settles the strongly correlated instances (and the exchanges or the neighbourhood solve
//! some weakly correlated ones, at the LP bound's floor) without a search.
#![cfg(feature = "testkit")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_budget::InstanceKind;
use pilot_budget::owned::{Exact, Lp, OwnedInstance, WeightDp};
use pilot_budget::testkit::check_offline_using;
use pilot_core::{MckpSolution, MckpSolver};
use proptest::prelude::*;
use rand_core::RngCore;
use rand_pcg::Pcg64Mcg;

/// Small instances whose profits are `a·w + b·rank + noise` within each class: the fit finds
/// them (exactly when the noise is zero), so the bound is computed with reduced profits that
/// spread a little, on both signs of `b`.
fn near_affine() -> impl Strategy<Value = OwnedInstance> {
    (
        1usize..7,
        1usize..6,
        0u64..4,
        -12i64..13,
        0u64..3,
        any::<u64>(),
        0.0f64..=1.0,
    )
        .prop_map(|(m, n, a, b, noise, seed, ratio)| {
            let mut state = seed | 1;
            let mut next = |k: u64| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state % k
            };
            let mut classes = Vec::new();
            for _ in 0..m {
                let mut w: Vec<u64> = (0..n).map(|_| 1 + next(40)).collect();
                w.sort_unstable();
                let p = w
                    .iter()
                    .enumerate()
                    .map(|(rank, &w)| {
                        let v = (a * w) as i64 + b * (rank as i64 + 1) + next(noise + 1) as i64;
                        v.max(0) as f64
                    })
                    .collect();
                classes.push((w, p));
            }
            // The capacity `ratio` of the way from the lightest choice to the heaviest.
            let lo: u64 = classes.iter().map(|(w, _)| w[0]).sum();
            let hi: u64 = classes.iter().map(|(w, _)| w[n - 1]).sum();
            let capacity = lo + ((hi - lo) as f64 * ratio) as u64;
            OwnedInstance::from_classes(capacity, &classes)
        })
}

/// The exact solver against the plain DP, brute force and the LP (`check_offline_using`: the
/// instances here are small enough for all three), its cardinality bound, when it has one,
/// never below the optimum, and the rank knapsacks' choice, when one fits, never above it.
fn check(inst: &OwnedInstance) -> Result<(), TestCaseError> {
    let mut exact = Exact::new();
    let solution = check_offline_using(&mut exact, inst).map_err(TestCaseError::fail)?;
    let start = exact.start_stats();
    if let (Some(solution), Some(bound)) = (solution, start.cardinality_bound) {
        prop_assert!(
            bound >= solution.value,
            "bound {} below the optimum {}",
            bound,
            solution.value
        );
    }
    if let (Some(solution), Some(rank_choice)) = (solution, start.rank_choice) {
        prop_assert!(
            rank_choice <= solution.value && rank_choice > start.greedy,
            "rank choice {} vs optimum {} and greedy {}",
            rank_choice,
            solution.value,
            start.greedy
        );
    }
    Ok(())
}

/// Inverse strongly correlated classes of moderate size, with a little noise on the profits:
/// `n` summands `q ~ u[1, R]`, sorted, each item the prefix sum of `(q + gap, q + noise)`, so
/// each class is convex in rank (its LP hull is one chord) and profits are near `w − gap·rank`.
/// The first phase seldom settles them, and the core search checks its states against the
/// rank tables (`mckp::ranks`): they cut states in about half the cases (4 565 of 9 900 in a
/// run of 10 000).
fn convex_in_rank() -> impl Strategy<Value = OwnedInstance> {
    (
        8usize..24,
        3usize..14,
        200u64..2000,
        1u64..20,
        0u64..3,
        any::<u64>(),
        0.05f64..=0.95,
    )
        .prop_map(|(m, n, range, gap, noise, seed, ratio)| {
            let mut rng = Pcg64Mcg::new(u128::from(seed));
            let mut classes = Vec::new();
            for _ in 0..m {
                let mut q: Vec<u64> = (0..n).map(|_| 1 + rng.next_u64() % range).collect();
                q.sort_unstable();
                let (mut w, mut p) = (Vec::new(), Vec::new());
                let (mut sw, mut sp) = (0u64, 0u64);
                for q in q {
                    sw += q + gap;
                    sp += q + rng.next_u64() % (noise + 1);
                    w.push(sw);
                    p.push(sp as f64);
                }
                classes.push((w, p));
            }
            let lo: u64 = classes.iter().map(|(w, _)| w[0]).sum();
            let hi: u64 = classes.iter().map(|(w, _)| w[n - 1]).sum();
            let capacity = lo + ((hi - lo) as f64 * ratio) as u64;
            OwnedInstance::from_classes(capacity, &classes)
        })
}

proptest! {
    // The plain DP in a debug build: fewer cases than the default.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_rank_tables_never_cut_off_the_optimum(inst in convex_in_rank()) {
        let view = inst.view().unwrap();
        let mut exact = Exact::new();
        let solution = exact.solve(&view, &mut vec![0; view.class_count()]).unwrap();
        let dp = WeightDp::new().solve(&view, &mut vec![0; view.class_count()]).unwrap();
        prop_assert_eq!(solution.value, dp.value);
        prop_assert!(solution.weight <= inst.capacity);
    }
}

proptest! {
    #[test]
    fn the_cardinality_bound_never_cuts_off_the_optimum(inst in near_affine()) {
        check(&inst)?;
    }

    #[test]
    fn generated_kinds_keep_their_optimum(
        kind in prop::sample::select(InstanceKind::ALL.to_vec()),
        m in 1usize..10,
        n in 1usize..12,
        seed in any::<u64>(),
        ratio in 0.0f64..=1.0,
    ) {
        let mut rng = Pcg64Mcg::new(u128::from(seed));
        let mut inst = OwnedInstance::generate(kind, m, n, 300, &mut rng).unwrap();
        inst.set_capacity_ratio(ratio).unwrap();
        check(&inst)?;
    }
}

/// A generated `m × n` instance of `kind` with coefficient range `range` from `seed`, its
/// capacity at `ratio`.
fn generated(
    kind: InstanceKind,
    (m, n): (usize, usize),
    range: u64,
    seed: u128,
    ratio: f64,
) -> OwnedInstance {
    let mut rng = Pcg64Mcg::new(seed);
    let mut inst = OwnedInstance::generate(kind, m, n, range, &mut rng).unwrap();
    inst.set_capacity_ratio(ratio).unwrap();
    inst
}

/// An inverse strongly correlated `m × n` instance (R = 100 000) from `seed`, its capacity at
/// `ratio`.
fn inverse(m: usize, n: usize, seed: u128, ratio: f64) -> OwnedInstance {
    generated(
        InstanceKind::InverseStronglyCorrelated,
        (m, n),
        100_000,
        seed,
        ratio,
    )
}

/// The exact solution of `inst`, the solver that found it (for its stats) and the LP bound.
fn solve_and_relax(inst: &OwnedInstance) -> (MckpSolution, Exact, f64) {
    let view = inst.view().unwrap();
    let mut choice = vec![0; view.class_count()];
    let mut exact = Exact::new();
    let solution = exact.solve(&view, &mut choice).unwrap();
    let lp = Lp::new().solve(&view, &mut choice).unwrap().bound.unwrap();
    (solution, exact, lp)
}

/// A strongly correlated instance too large for the plain DP: the pair exchanges reach the
/// cardinality bound, which proves the solution optimal with no search at all, far below the
/// LP bound.
#[test]
fn strongly_correlated_instances_settle_at_the_cardinality_bound() {
    let mut rng = Pcg64Mcg::new(7);
    let mut inst =
        OwnedInstance::generate(InstanceKind::StronglyCorrelated, 300, 20, 100_000, &mut rng)
            .unwrap();
    for ratio in [0.25, 0.5, 0.75] {
        inst.set_capacity_ratio(ratio).unwrap();
        let (solution, exact, lp) = solve_and_relax(&inst);
        let start = exact.start_stats();
        let bound = start.cardinality_bound.expect("a cardinality bound");
        assert!(start.settled, "{ratio}: {start:?}");
        assert_eq!(exact.stats().passes, 0);
        assert!(
            solution.value <= bound && bound < solution.value + 1.0,
            "{start:?}"
        );
        assert!(solution.weight <= inst.capacity);
        assert!(lp > bound, "{ratio}: LP {lp} vs {bound}");
    }
}

/// Without the structure (independent weights and profits) no bound is computed and the
/// solve is the core search as before.
#[test]
fn uncorrelated_instances_have_no_cardinality_bound() {
    let mut rng = Pcg64Mcg::new(8);
    let mut inst =
        OwnedInstance::generate(InstanceKind::Uncorrelated, 200, 10, 1000, &mut rng).unwrap();
    inst.set_capacity_ratio(0.25).unwrap();
    let view = inst.view().unwrap();
    let mut exact = Exact::new();
    exact.solve(&view, &mut vec![0; 200]).unwrap();
    assert_eq!(exact.start_stats().cardinality_bound, None);
}

/// Weakly correlated instances often have solutions at the LP bound's floor, the optimum for
/// whole profits: where the exchanges (pairs, triples, quadruples) find one, the solve ends
/// without a search. They are a heuristic: here one of the three settles (the others stop 1
/// and 2 short, and the search finishes). Wherever the first phase settles, the value is that floor.
#[test]
fn weakly_correlated_instances_settle_at_the_lp_floor() {
    let mut rng = Pcg64Mcg::new(9);
    let mut settled = 0;
    for ratio in [0.25, 0.5, 0.75] {
        let mut inst =
            OwnedInstance::generate(InstanceKind::WeaklyCorrelated, 1000, 20, 100_000, &mut rng)
                .unwrap();
        inst.set_capacity_ratio(ratio).unwrap();
        let (solution, exact, lp) = solve_and_relax(&inst);
        let start = exact.start_stats();
        assert!(solution.value <= lp.floor() && solution.weight <= inst.capacity);
        if start.settled {
            settled += 1;
            assert_eq!(solution.value, lp.floor(), "{ratio}: {start:?}");
            assert_eq!(exact.stats().passes, 0);
        }
    }
    assert!(settled >= 1, "none of the three settled");
}

/// The rank knapsacks keep to the caller's memory budget (they are small: 64 KB is enough
/// here), so a budget too small for the core search still gets the bound before the search
/// reports the budget; without one, the search reaches the bound, which is the optimum here.
#[test]
fn the_rank_knapsacks_solve_within_a_tight_memory_budget() {
    let inst = inverse(300, 50, 18, 0.25);
    let view = inst.view().unwrap();
    let mut tight = Exact::with_memory_budget(64 * 1024);
    let err = tight.solve(&view, &mut vec![0; 300]).unwrap_err();
    assert_eq!(err.kind(), pilot_core::ErrorKind::BufferTooSmall);
    assert!(err.to_string().contains("memory budget"), "{err}");
    let bound = tight
        .start_stats()
        .cardinality_bound
        .expect("a cardinality bound");
    let (solution, free, _) = solve_and_relax(&inst);
    assert_eq!(free.start_stats().cardinality_bound, Some(bound));
    assert!(solution.value <= bound && bound < solution.value + 1.0);
    assert!(solution.weight <= inst.capacity);
}

/// The suite's inverse strongly correlated 1 000 × 50 at ratio 0.25 (`benches/mckp_suite.rs`
/// seeds it so): the best rank sum's largest weight lies below the capacity, so that rank
/// knapsack's choice fits and the exchanges from it reach the bound, and no search runs. From
/// the greedy solution alone they stopped short, and the search kept 4.8 million states to
/// find the same optimum.
#[test]
fn the_rank_knapsacks_choice_settles_the_suites_inverse_instance() {
    let (m, n, ratio) = (1000usize, 50usize, 0.25);
    let seed = (m * 131 + n) as u128 * 1000
        + InstanceKind::InverseStronglyCorrelated as u128 * 10
        + (ratio * 4.0) as u128;
    let inst = inverse(m, n, 0x20_5eed ^ seed, ratio);
    let (solution, exact, lp) = solve_and_relax(&inst);
    let start = exact.start_stats();
    let rank_choice = start.rank_choice.expect("a rank knapsack choice that fits");
    assert!(rank_choice > start.greedy && rank_choice <= solution.value);
    assert!(start.settled, "{start:?}");
    assert_eq!(exact.stats().passes, 0);
    assert_eq!(solution.value, 25_159_630.0);
    assert_eq!(
        start.cardinality_bound.map(f64::floor),
        Some(solution.value)
    );
    assert!(solution.weight <= inst.capacity && lp > solution.value + 90.0);
}

/// Where the first phase does not settle an inverse strongly correlated instance, the core
/// search checks its states against the outside classes' exact rank knapsacks too
/// (`mckp::ranks`): they cut states the LP keeps, and the optimum stays the plain DP's.
#[test]
fn the_rank_tables_cut_states_and_keep_the_optimum() {
    let mut rng = Pcg64Mcg::new(5);
    let (m, n, range) = (30, 30, 3000);
    let mut cut = 0;
    for _ in 0..4 {
        let mut inst = OwnedInstance::generate(
            InstanceKind::InverseStronglyCorrelated,
            m,
            n,
            range,
            &mut rng,
        )
        .unwrap();
        for ratio in [0.25, 0.5, 0.75] {
            inst.set_capacity_ratio(ratio).unwrap();
            let view = inst.view().unwrap();
            let mut exact = Exact::new();
            let solution = exact.solve(&view, &mut vec![0; m]).unwrap();
            let dp = WeightDp::new().solve(&view, &mut vec![0; m]).unwrap();
            assert_eq!(solution.value, dp.value, "{ratio}");
            assert!(solution.weight <= inst.capacity);
            cut += usize::from(exact.stats().outside_cuts > 0);
        }
    }
    assert!(cut >= 3, "the rank tables cut states in {cut} of 12");
}

/// The exchanges from a rank knapsack's choice can stop short where those from the greedy
/// solution reach the bound (here they stop 10 short): both run, and the instance settles
/// without a search.
#[test]
fn the_greedy_solutions_exchanges_run_when_the_rank_choice_stops_short() {
    let inst = inverse(300, 50, 2, 0.75);
    let (solution, exact, _) = solve_and_relax(&inst);
    let start = exact.start_stats();
    assert!(start.rank_choice.is_some(), "{start:?}");
    assert!(start.settled, "{start:?}");
    assert_eq!(exact.stats().passes, 0);
    assert_eq!(solution.value, 22_591_897.0);
}

/// Where the exchanges stop short of the LP bound's floor, re-solving the classes nearest to
/// changing item (the others fixed) reaches it: the instance is settled (a solution worth the
/// floor is optimal with whole profits) and the core search does not run.
#[test]
fn the_neighbourhood_settles_where_the_exchanges_stop_short() {
    let inst = generated(InstanceKind::WeaklyCorrelated, (100, 10), 10_000, 0, 0.25);
    let view = inst.view().unwrap();
    let mut choice = vec![0; 100];
    let bound = Lp::new().relax(&view, &mut choice).unwrap().bound;
    let mut exact = Exact::new();
    let solution = exact.solve(&view, &mut choice).unwrap();
    let start = exact.start_stats();
    assert_eq!(solution.value, bound.floor(), "{start:?}");
    assert!(start.exchanged < solution.value, "{start:?}");
    assert_eq!(start.neighbourhood, Some(solution.value), "{start:?}");
    assert!(start.settled, "{start:?}");
    assert_eq!(exact.stats().passes, 0);
    let (value, weight) = view.evaluate(&choice).unwrap();
    assert_eq!(value, solution.value);
    assert!(weight <= view.capacity());
}
