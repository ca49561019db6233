//! The scratch sizing the README and docs/embedded.md give for small instances: state lists of
//! S = min(∏ nᵢ, Σ (max wᵢ − min wᵢ) + 1) slots and m·S records always suffice for the exact
//! core solver, and it then agrees with the plain DP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pilot_budget::{
    ClassSlot, CoreScratch, CoreSolver, DpScratch, DpSolver, Increment, ItemSlot, Record, Scratch,
    State,
};
use pilot_core::{ErrorKind, MckpInstance, MckpSolver};
use proptest::prelude::*;

/// One class: its items' weights and profits.
type Class = (Vec<u64>, Vec<f64>);

/// The documented bound: (state slots per list, record slots).
fn documented(classes: &[Class]) -> (usize, usize) {
    let product = classes
        .iter()
        .fold(1usize, |p, (w, _)| p.saturating_mul(w.len()));
    let spread: u64 = classes
        .iter()
        .map(|(w, _)| w.iter().max().unwrap() - w.iter().min().unwrap())
        .sum();
    let states = product.min(spread as usize + 1);
    (states, classes.len() * states)
}

/// Solves with the core solver in exactly the documented scratch, and with the DP.
fn both(capacity: u64, classes: &[Class]) -> (Result<f64, ErrorKind>, Result<f64, ErrorKind>) {
    let weights: Vec<u64> = classes.iter().flat_map(|(w, _)| w.clone()).collect();
    let profits: Vec<f64> = classes.iter().flat_map(|(_, p)| p.clone()).collect();
    let ends: Vec<usize> = classes
        .iter()
        .scan(0, |end, (w, _)| {
            *end += w.len();
            Some(*end)
        })
        .collect();
    let instance = MckpInstance::new(capacity, &weights, &profits, &ends).unwrap();
    let (n, m) = (weights.len(), classes.len());
    let (states, records) = documented(classes);
    let mut choice = vec![0; m];

    let mut items = vec![ItemSlot::default(); n];
    let mut incs = vec![Increment::default(); n];
    let mut slots = vec![ClassSlot::default(); m];
    let (mut cur, mut next) = (
        vec![State::default(); states],
        vec![State::default(); states],
    );
    let mut recs = vec![Record::default(); records];
    let mut core = CoreSolver::new(
        Scratch::new(&mut items, &mut incs, &mut slots),
        CoreScratch::new(&mut cur, &mut next, &mut recs),
    );
    let exact = core
        .solve(&instance, &mut choice)
        .map(|s| s.value)
        .map_err(|e| e.kind());

    let c = usize::try_from(capacity).unwrap();
    let mut values = vec![0.0; DpScratch::value_slots(c)];
    let mut choices = vec![0u16; DpScratch::choice_slots(m, c)];
    let mut dp = DpSolver::new(DpScratch::new(&mut values, &mut choices));
    let reference = dp
        .solve(&instance, &mut choice)
        .map(|s| s.value)
        .map_err(|e| e.kind());
    (exact, reference)
}

fn small_classes() -> impl Strategy<Value = (u64, Vec<Class>)> {
    let class = (1usize..6).prop_flat_map(|n| {
        (
            prop::collection::vec(0u64..50, n),
            prop::collection::vec(0u32..100, n),
        )
            .prop_map(|(w, p)| (w, p.into_iter().map(f64::from).collect::<Vec<f64>>()))
    });
    (0u64..200, prop::collection::vec(class, 1..8))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_documented_sizes_always_suffice((capacity, classes) in small_classes()) {
        let (exact, reference) = both(capacity, &classes);
        prop_assert!(
            exact != Err(ErrorKind::BufferTooSmall),
            "documented scratch {:?} too small for capacity {capacity}, {classes:?}",
            documented(&classes)
        );
        prop_assert_eq!(exact, reference, "capacity {}, {:?}", capacity, classes);
    }
}

#[test]
fn the_readme_example_needs_nine_states_and_eighteen_records() {
    let classes = vec![
        (vec![1, 4, 9], vec![0.5, 0.8, 0.9]),
        (vec![2, 5, 8], vec![0.4, 0.9, 0.95]),
    ];
    assert_eq!(documented(&classes), (9, 18));
    let (exact, reference) = both(10, &classes);
    assert!((exact.unwrap() - 1.7).abs() < 1e-12);
    assert!((reference.unwrap() - 1.7).abs() < 1e-12);
}

#[test]
fn the_embedded_example_fits_its_constants() {
    // docs/embedded.md: 4 queries, 3 LLMs, costs ≤ 50 → 201 states, 804 records.
    let classes: Vec<Class> = (0..4)
        .map(|q| (vec![0, 25 + q, 50], vec![0.1, 0.6, 0.9]))
        .collect();
    let (states, records) = documented(&classes);
    assert!(states <= 4 * 50 + 1 && records <= 4 * (4 * 50 + 1));
    let (exact, reference) = both(100, &classes);
    assert_eq!(exact, reference);
}
