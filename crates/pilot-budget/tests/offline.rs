//! Offline solvers against each other and against brute force (proptest), plus bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "testkit")]

use pilot_budget::owned::{Exact, Greedy, Lp, OwnedInstance, WeightDp};
use pilot_budget::testkit::{brute_force, check_offline, instance_from_bytes};
use pilot_budget::{CoreStats, InstanceKind};
use pilot_core::{ErrorKind, MckpInstance, MckpSolver};
use proptest::prelude::*;
use rand_pcg::Pcg64Mcg;

fn small_instance() -> impl Strategy<Value = OwnedInstance> {
    let class = (1usize..5).prop_flat_map(|n| {
        (
            prop::collection::vec(0u64..40, n),
            prop::collection::vec(-5i32..60, n),
        )
    });
    (prop::collection::vec(class, 1..7), 0u64..150).prop_map(|(classes, capacity)| {
        let classes: Vec<(Vec<u64>, Vec<f64>)> = classes
            .into_iter()
            .map(|(w, p)| (w, p.into_iter().map(f64::from).collect()))
            .collect();
        OwnedInstance::from_classes(capacity, &classes)
    })
}

fn fractional_profits() -> impl Strategy<Value = OwnedInstance> {
    let class = (1usize..5).prop_flat_map(|n| {
        (
            prop::collection::vec(0u64..30, n),
            prop::collection::vec(0.0f64..1.0, n),
        )
    });
    (prop::collection::vec(class, 1..6), 0u64..100)
        .prop_map(|(classes, capacity)| OwnedInstance::from_classes(capacity, &classes))
}

// Case count from PROPTEST_CASES (256 by default; `cargo xtask ci` asks for more).
proptest! {

    #[test]
    fn exact_matches_brute_force_and_bounds_hold(inst in small_instance()) {
        let result = check_offline(&inst);
        prop_assert!(result.is_ok(), "{:?} on {:?}", result, inst);
        let view = inst.view().unwrap();
        let brute = brute_force(&view).unwrap();
        match (result.unwrap(), brute) {
            (Some(exact), Some((value, _))) => prop_assert_eq!(exact.value, value),
            (None, None) => {}
            (a, b) => prop_assert!(false, "exact {:?} vs brute {:?}", a, b),
        }
    }

    #[test]
    fn fractional_profits_agree(inst in fractional_profits()) {
        let result = check_offline(&inst);
        prop_assert!(result.is_ok(), "{:?} on {:?}", result, inst);
    }

    /// Every generator kind at small sizes and capacity ratios across `[0, 1]`: the exact
    /// solver's optimum equals the plain DP's (and brute force's where it is small enough),
    /// and its choice is feasible and worth what it says.
    #[test]
    fn generated_kinds_and_ratios_match_plain_dp(
        kind in 0usize..InstanceKind::ALL.len(),
        m in 1usize..14,
        n in 1usize..31,
        range in prop::sample::select(vec![20u64, 300, 3000]),
        ratio in prop::sample::select(vec![0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]),
        seed in any::<u64>(),
    ) {
        let kind = InstanceKind::ALL[kind];
        let mut rng = Pcg64Mcg::new(u128::from(seed));
        let mut inst = OwnedInstance::generate(kind, m, n, range, &mut rng).unwrap();
        inst.set_capacity_ratio(ratio).unwrap();
        let view = inst.view().unwrap();
        let (mut a, mut b) = (vec![0; m], vec![0; m]);
        let exact = Exact::new().solve(&view, &mut a).unwrap();
        let dp = WeightDp::new().solve(&view, &mut b).unwrap();
        prop_assert_eq!(exact.value, dp.value, "{:?} {} {}x{} R={}", kind, ratio, m, n, range);
        let (value, weight) = view.evaluate(&a).unwrap();
        prop_assert_eq!(value, exact.value);
        prop_assert!(weight <= inst.capacity);
        if n.pow(m.min(6) as u32) <= 4096 && m <= 6 {
            let (brute, _) = brute_force(&view).unwrap().unwrap();
            prop_assert_eq!(exact.value, brute);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(inst) = instance_from_bytes(&data) {
            let result = check_offline(&inst);
            prop_assert!(result.is_ok(), "{:?}", result);
        }
    }
}

#[test]
fn generated_medium_instances_match_plain_dp() {
    let mut rng = Pcg64Mcg::new(7);
    for kind in InstanceKind::ALL {
        for _ in 0..5 {
            let inst = OwnedInstance::generate(kind, 30, 8, 300, &mut rng).unwrap();
            let view = inst.view().unwrap();
            let mut a = vec![0; 30];
            let mut b = vec![0; 30];
            let exact = Exact::new().solve(&view, &mut a).unwrap();
            let dp = WeightDp::new().solve(&view, &mut b).unwrap();
            assert_eq!(exact.value, dp.value, "{kind:?}");
            check_offline(&inst).unwrap();
        }
    }
}

#[test]
fn lp_reports_the_fractional_class() {
    // One class, items (0, 0), (10, 10): capacity 5 takes half of the heavy item.
    let inst = OwnedInstance::from_classes(5, &[(vec![0, 10], vec![0.0, 10.0])]);
    let mut choice = [9];
    let r = Lp::new().relax(&inst.view().unwrap(), &mut choice).unwrap();
    assert_eq!(choice, [0]);
    assert_eq!(r.bound, 5.0);
    assert_eq!(r.lambda, 1.0);
    let f = r.fractional.unwrap();
    assert_eq!((f.class, f.lower, f.upper, f.fraction), (0, 0, 1, 0.5));
}

#[test]
fn dominated_and_lp_dominated_items_are_handled() {
    // Class 0: item 2 is dominated by item 1 (heavier, less profit); item 1 is LP-dominated
    // (below the segment 0→3) yet it is the integer optimum at capacity 5.
    let inst = OwnedInstance::from_classes(5, &[(vec![0, 5, 6, 10], vec![0.0, 4.0, 3.0, 10.0])]);
    let view = inst.view().unwrap();
    let mut c = [0];
    assert_eq!(Exact::new().solve(&view, &mut c).unwrap().value, 4.0);
    assert_eq!(c, [1]);
    // Greedy only walks the hull, so it stays at item 0.
    assert_eq!(Greedy::new().solve(&view, &mut c).unwrap().value, 0.0);
}

#[test]
fn bad_input_is_an_error_and_leaves_choice_alone() {
    let inst = OwnedInstance::from_classes(1, &[(vec![2, 3], vec![1.0, 2.0])]);
    let view = inst.view().unwrap();
    let mut choice = [7];
    for solver in [
        &mut Exact::new() as &mut dyn MckpSolver,
        &mut Greedy::new(),
        &mut Lp::new(),
        &mut WeightDp::new(),
    ] {
        assert_eq!(
            solver.solve(&view, &mut choice).unwrap_err().kind(),
            ErrorKind::Infeasible
        );
        assert_eq!(choice, [7]);
        assert_eq!(
            solver.solve(&view, &mut [0, 0]).unwrap_err().kind(),
            ErrorKind::DimensionMismatch
        );
    }
    let huge = OwnedInstance::from_classes(
        u64::MAX,
        &[(vec![u64::MAX], vec![1.0]), (vec![u64::MAX], vec![1.0])],
    );
    let err = Exact::new()
        .solve(&huge.view().unwrap(), &mut [0, 0])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
    let big =
        OwnedInstance::from_classes(0, &[(vec![0], vec![f64::MAX]), (vec![0], vec![f64::MAX])]);
    let err = Lp::new()
        .solve(&big.view().unwrap(), &mut [0, 0])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
    assert!(MckpInstance::new(3, &[1], &[f64::NAN], &[1]).is_err());
}

#[test]
fn tiny_core_scratch_is_reported_not_a_panic() {
    let mut rng = Pcg64Mcg::new(3);
    let inst =
        OwnedInstance::generate(InstanceKind::WeaklyCorrelated, 40, 10, 1000, &mut rng).unwrap();
    let view = inst.view().unwrap();
    let mut choice = vec![0; 40];
    let err = Exact::with_memory_budget(1000)
        .solve(&view, &mut choice)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
    assert!(err.to_string().contains("memory budget"), "{err}");
    let fine = Exact::new().solve(&view, &mut choice).unwrap();
    let mut dp_choice = vec![0; 40];
    assert_eq!(
        fine.value,
        WeightDp::new().solve(&view, &mut dp_choice).unwrap().value
    );
}

/// The scaling suite's kinds and capacity ratios at sizes the plain DP still solves: the exact
/// solver's optimum equals the DP's. At 64 classes (above the neighbourhood's 50, so the first
/// phase re-solves 50 of them with the rest fixed) the neighbourhood gains on some.
#[test]
fn suite_kinds_and_ratios_match_plain_dp() {
    let mut rng = Pcg64Mcg::new(20);
    let mut gained = 0;
    for kind in InstanceKind::ALL {
        for ratio in [0.25, 0.5, 0.75] {
            for (m, n, range) in [(40, 10, 1000), (12, 30, 3000), (64, 8, 1000)] {
                let mut inst = OwnedInstance::generate(kind, m, n, range, &mut rng).unwrap();
                inst.set_capacity_ratio(ratio).unwrap();
                let view = inst.view().unwrap();
                let (mut a, mut b) = (vec![0; m], vec![0; m]);
                let mut exact = Exact::new();
                let solution = exact.solve(&view, &mut a).unwrap();
                let dp = WeightDp::new().solve(&view, &mut b).unwrap();
                assert_eq!(solution.value, dp.value, "{kind:?} {ratio} {m}x{n}");
                assert!(solution.weight <= inst.capacity);
                // The bound is one, and a search ran unless the first phase reached it.
                assert!(
                    solution.bound.unwrap() >= dp.value,
                    "{kind:?} {ratio} {m}x{n}"
                );
                let searched = usize::from(!exact.start_stats().settled);
                assert!(
                    exact.stats().passes
                        >= searched * usize::from(solution.bound.unwrap() >= dp.value + 1.0)
                );
                assert_eq!(
                    view.evaluate(&a).unwrap(),
                    (solution.value, solution.weight)
                );
                gained += usize::from(exact.start_stats().neighbourhood.is_some());
            }
        }
    }
    assert!(gained > 0, "the neighbourhood gained on none");
}

/// Caller scratch far too small for every record of the search: unreachable records are
/// collected and the optimum is still found, in the no-allocator form.
#[test]
fn records_are_collected_in_small_caller_scratch() {
    use pilot_budget::{
        ClassSlot, CoreScratch, CoreSolver, Increment, ItemSlot, Record, Scratch, State,
    };
    let mut rng = Pcg64Mcg::new(5);
    let inst =
        OwnedInstance::generate(InstanceKind::StronglyCorrelated, 40, 10, 1000, &mut rng).unwrap();
    let view = inst.view().unwrap();
    let mut dp_choice = vec![0; 40];
    let dp = WeightDp::new().solve(&view, &mut dp_choice).unwrap();
    let (mut items, mut incs) = (
        vec![ItemSlot::default(); 400],
        vec![Increment::default(); 400],
    );
    let mut classes = vec![ClassSlot::default(); 40];
    let (mut cur, mut next) = (vec![State::default(); 4096], vec![State::default(); 4096]);
    let mut records = vec![Record::default(); 2560];
    let mut solver = CoreSolver::new(
        Scratch::new(&mut items, &mut incs, &mut classes),
        CoreScratch::new(&mut cur, &mut next, &mut records),
    );
    let mut choice = vec![0; 40];
    let solution = solver.solve(&view, &mut choice).unwrap();
    assert_eq!(solution.value, dp.value);
    let stats = solver.stats();
    assert!(stats.collections > 0, "{stats:?}");
    assert!(stats.peak_records <= 2560, "{stats:?}");
}

/// `owned::Exact` grows its state lists mid-search and goes on from the class that did not
/// fit (instead of starting over): the optimum is the same as the plain DP's, and the same as
/// a second solve with the grown lists (no growth), states kept included.
#[test]
fn growth_resumes_the_search_exactly() {
    // (Seeded so that an instance needs the lists to grow: the weakly correlated one at 0.5.)
    let mut rng = Pcg64Mcg::new(34);
    let mut grew = 0;
    for kind in [
        InstanceKind::SubsetSum,
        InstanceKind::WeaklyCorrelated,
        InstanceKind::StronglyCorrelated,
        InstanceKind::InverseStronglyCorrelated,
    ] {
        for ratio in [0.25, 0.5, 0.75] {
            let (m, n, range) = (16, 40, 20_000);
            let mut inst = OwnedInstance::generate(kind, m, n, range, &mut rng).unwrap();
            inst.set_capacity_ratio(ratio).unwrap();
            let view = inst.view().unwrap();
            let (mut a, mut b, mut c) = (vec![0; m], vec![0; m], vec![0; m]);
            let mut exact = Exact::new();
            let first = exact.solve(&view, &mut a).unwrap();
            let first_stats = exact.stats();
            let bytes = exact.memory_bytes();
            let again = exact.solve(&view, &mut b).unwrap();
            assert_eq!(exact.memory_bytes(), bytes);
            let dp = WeightDp::new().solve(&view, &mut c).unwrap();
            assert_eq!(first.value, dp.value, "{kind:?} {ratio}");
            assert_eq!(again.value, dp.value, "{kind:?} {ratio}");
            // The same search, up to the records: with more slots, a class may go through the
            // weight table instead of the merge, which can break ties between equal states
            // differently (a base state instead of a moved one), so the records may differ.
            let key = |s: CoreStats| {
                (
                    s.classes_added,
                    s.peak_states,
                    s.states_kept,
                    s.passes,
                    s.items_tried,
                )
            };
            assert_eq!(key(first_stats), key(exact.stats()), "{kind:?} {ratio}");
            assert!(first.weight <= inst.capacity);
            grew += usize::from(first_stats.peak_states > 4096);
        }
    }
    assert!(grew > 0, "no instance needed the lists to grow");
}

/// A caller's bound much nearer its incumbent than the LP's (as a cardinality bound is): after
/// the pass aimed at that bound, the search goes straight to the last pass (two in all, where
/// aiming one unit lower each time would take four), and the optimum is still the plain DP's.
#[test]
fn a_hint_bound_near_the_incumbent_skips_the_passes_between() {
    use pilot_budget::{ClassSlot, CoreScratch, CoreSolver, Hint, Increment, ItemSlot, Record};
    use pilot_budget::{Scratch, State};
    let (m, n) = (20, 10);
    let mut rng = Pcg64Mcg::new(11);
    let mut tried = 0;
    for _ in 0..40 {
        if tried == 5 {
            break;
        }
        let kind = InstanceKind::InverseStronglyCorrelated;
        let inst = OwnedInstance::generate(kind, m, n, 10_000, &mut rng).unwrap();
        let view = inst.view().unwrap();
        let mut optimal = vec![0; m];
        let opt = WeightDp::new().solve(&view, &mut optimal).unwrap().value;
        let lp = Lp::new().relax(&view, &mut vec![0; m]).unwrap().bound;
        // Near: the hint's bound (4 above) within a quarter of the LP's distance.
        if lp - opt < 16.0 {
            continue;
        }
        tried += 1;
        let (mut items, mut incs) = (
            vec![ItemSlot::default(); m * n],
            vec![Increment::default(); m * n],
        );
        let mut classes = vec![ClassSlot::default(); m];
        let (mut cur, mut next) = (
            vec![State::default(); 1 << 14],
            vec![State::default(); 1 << 14],
        );
        let mut records = vec![Record::default(); 1 << 16];
        let mut solver = CoreSolver::new(
            Scratch::new(&mut items, &mut incs, &mut classes),
            CoreScratch::new(&mut cur, &mut next, &mut records),
        )
        .hinted(Some(Hint {
            value: opt,
            upper_bound: opt + 4.0,
        }));
        let mut choice = optimal.clone();
        let solution = solver.solve(&view, &mut choice).unwrap();
        assert_eq!(solution.value, opt);
        assert_eq!(solver.stats().passes, 2, "{:?}", solver.stats());
    }
    assert!(
        tried >= 5,
        "only {tried} instances with the LP bound 16 above the optimum"
    );
}
