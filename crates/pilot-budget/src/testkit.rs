//! Differential oracles for tests and fuzz targets: brute force, the solver cross-checks, and
//! the online "never over budget" run. A fuzz target is three lines:
//!
//! ```
//! # let data: &[u8] = &[3, 2, 9, 1, 4, 7, 5, 2, 8, 1];
//! if let Some(instance) = pilot_budget::testkit::instance_from_bytes(data) {
//!     pilot_budget::testkit::check_offline(&instance).unwrap();
//! }
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use pilot_core::{
    ArmScore, Cost, CostPolicy, Decision, ErrorKind, MckpInstance, MckpSolution, MckpSolver,
};

use crate::owned::{Exact, Greedy, Lp, OwnedInstance, WeightDp};

/// Enumerations above this many choices are refused by [`brute_force`].
pub const BRUTE_FORCE_LIMIT: u64 = 1 << 20;

/// The optimum by enumerating every choice: `Ok(None)` when no choice fits, `Err` when there
/// are more than [`BRUTE_FORCE_LIMIT`] choices.
///
/// # Errors
/// A message when the instance is too large to enumerate.
pub fn brute_force(instance: &MckpInstance<'_>) -> Result<Option<(f64, Vec<usize>)>, String> {
    let m = instance.class_count();
    let mut count = 1u64;
    for c in 0..m {
        count = count.saturating_mul(instance.class_range(c).len() as u64);
    }
    if count > BRUTE_FORCE_LIMIT {
        return Err(format!("brute force: {count} choices is too many"));
    }
    let mut choice = vec![0usize; m];
    let mut best: Option<(f64, Vec<usize>)> = None;
    loop {
        let (value, weight) = instance.evaluate(&choice).map_err(|e| format!("{e}"))?;
        if weight <= instance.capacity() && best.as_ref().is_none_or(|(v, _)| value > *v) {
            best = Some((value, choice.clone()));
        }
        // Odometer increment over the classes.
        let mut c = 0;
        loop {
            if c == m {
                return Ok(best);
            }
            choice[c] += 1;
            if choice[c] < instance.class_range(c).len() {
                break;
            }
            choice[c] = 0;
            c += 1;
        }
    }
}

/// Checks that `choice` is valid, fits, and has exactly the reported value and weight.
///
/// # Errors
/// A message naming what does not hold.
pub fn check_solution(
    instance: &MckpInstance<'_>,
    choice: &[usize],
    solution: &MckpSolution,
) -> Result<(), String> {
    let (value, weight) = instance
        .evaluate(choice)
        .map_err(|e| format!("invalid choice: {e}"))?;
    if weight != solution.weight {
        return Err(format!(
            "reported weight {} but the choice weighs {weight}",
            solution.weight
        ));
    }
    if weight > instance.capacity() {
        return Err(format!(
            "weight {weight} exceeds capacity {}",
            instance.capacity()
        ));
    }
    if value != solution.value {
        return Err(format!(
            "reported value {} but the choice is worth {value}",
            solution.value
        ));
    }
    Ok(())
}

fn tolerance(instance: &MckpInstance<'_>) -> f64 {
    let scale: f64 = instance.profits().iter().map(|p| p.abs()).sum();
    1e-9 * (1.0 + scale)
}

/// Runs LP, greedy, exact (and the weight DP when `m·C ≤ 4·10⁶`, brute force when small) and
/// checks them against each other: each choice is valid with its reported value and weight,
/// LP bound ≥ exact ≥ greedy, exact == DP == brute force, LP == exact when no class is
/// fractional, and all agree on infeasibility. Returns the exact solution (`None` if
/// infeasible).
///
/// # Errors
/// A message describing the first disagreement.
pub fn check_offline(owned: &OwnedInstance) -> Result<Option<MckpSolution>, String> {
    check_offline_using(&mut Exact::new(), owned)
}

/// [`check_offline`] with a caller's exact solver, so small instances need not pay for the
/// default solver's large first allocation (fuzzing runs thousands per second).
///
/// # Errors
/// As [`check_offline`].
pub fn check_offline_using(
    exact: &mut Exact,
    owned: &OwnedInstance,
) -> Result<Option<MckpSolution>, String> {
    let Ok(instance) = owned.view() else {
        return Ok(None);
    };
    let m = instance.class_count();
    let tol = tolerance(&instance);
    let mut choice = vec![0usize; m];
    let mut lp = Lp::new();
    let relaxation = lp.relax(&instance, &mut choice);
    let exact = exact.solve(&instance, &mut choice);
    let exact = match (relaxation, exact) {
        (Err(a), Err(b))
            if a.kind() == ErrorKind::Infeasible && b.kind() == ErrorKind::Infeasible =>
        {
            if let Ok(Some(_)) = brute_force(&instance) {
                return Err(String::from(
                    "solvers say infeasible, brute force found a choice",
                ));
            }
            return Ok(None);
        }
        (Ok(r), Ok(s)) => {
            check_solution(&instance, &choice, &s).map_err(|e| format!("exact: {e}"))?;
            if s.value > r.bound + tol {
                return Err(format!("exact {} above LP bound {}", s.value, r.bound));
            }
            if r.fractional.is_none() && (s.value - r.bound).abs() > tol {
                return Err(format!(
                    "no fractional class, yet LP {} != exact {}",
                    r.bound, s.value
                ));
            }
            s
        }
        (r, s) => {
            return Err(format!(
                "LP and exact disagree on feasibility: {r:?} vs {s:?}"
            ));
        }
    };
    let mut greedy_choice = vec![0usize; m];
    let greedy = Greedy::new()
        .solve(&instance, &mut greedy_choice)
        .map_err(|e| format!("greedy failed: {e}"))?;
    check_solution(&instance, &greedy_choice, &greedy).map_err(|e| format!("greedy: {e}"))?;
    if greedy.value > exact.value + tol {
        return Err(format!(
            "greedy {} beats exact {}",
            greedy.value, exact.value
        ));
    }
    let mut lp_choice = vec![0usize; m];
    let lp_solution = lp
        .solve(&instance, &mut lp_choice)
        .map_err(|e| format!("lp: {e}"))?;
    check_solution(&instance, &lp_choice, &lp_solution)
        .map_err(|e| format!("lp integer part: {e}"))?;
    if (m as u64).saturating_mul(instance.capacity()) <= 4_000_000 {
        let mut dp_choice = vec![0usize; m];
        let dp = WeightDp::new()
            .solve(&instance, &mut dp_choice)
            .map_err(|e| format!("dp failed: {e}"))?;
        check_solution(&instance, &dp_choice, &dp).map_err(|e| format!("dp: {e}"))?;
        if (dp.value - exact.value).abs() > tol {
            return Err(format!("dp {} != exact {}", dp.value, exact.value));
        }
    }
    if let Ok(Some((value, _))) = brute_force(&instance)
        && (value - exact.value).abs() > tol
    {
        return Err(format!("brute force {value} != exact {}", exact.value));
    }
    Ok(Some(exact))
}

/// Decodes arbitrary bytes into a small instance (≤ 6 classes of ≤ 5 items, weights < 64),
/// for fuzzing; `None` when there are too few bytes.
pub fn instance_from_bytes(data: &[u8]) -> Option<OwnedInstance> {
    let (&head, rest) = data.split_first()?;
    let (&cap, mut rest) = rest.split_first()?;
    let classes = usize::from(head % 6) + 1;
    let mut out = OwnedInstance {
        capacity: u64::from(cap),
        ..OwnedInstance::default()
    };
    for _ in 0..classes {
        let (&n, r) = rest.split_first()?;
        rest = r;
        for _ in 0..usize::from(n % 5) + 1 {
            let (&w, r) = rest.split_first()?;
            let (&p, r) = r.split_first()?;
            rest = r;
            out.weights.push(u64::from(w % 64));
            out.profits.push(f64::from(p as i8));
        }
        out.class_ends.push(out.weights.len());
    }
    Some(out)
}

/// One query of an online stream: per-arm scores and estimated costs.
pub type Query<F> = (Vec<ArmScore<F>>, Vec<F>);

/// Runs `policy` over `stream`, charging each chosen arm its estimated cost, and checks after
/// every query that the spend never exceeds the budget and that a routed arm did fit.
/// Inputs the policy rejects with an error must leave its state unchanged.
///
/// # Errors
/// A message naming the first query where the budget was exceeded.
pub fn check_online<F: pilot_core::Real, P: CostPolicy<F>>(
    policy: &mut P,
    stream: &[Query<F>],
) -> Result<usize, String> {
    let mut routed = 0;
    for (t, (scores, costs)) in stream.iter().enumerate() {
        let before = policy.state();
        match policy.choose(scores, costs) {
            Ok(Decision::Route(arm)) => {
                let cost = *costs
                    .get(arm.index())
                    .ok_or(format!("query {t}: routed to {arm} outside the pool"))?;
                let cost = Cost::new(cost).map_err(|e| format!("query {t}: {e}"))?;
                policy
                    .charge(arm, cost)
                    .map_err(|e| format!("query {t}: {e}"))?;
                routed += 1;
            }
            Ok(Decision::BudgetExhausted) => {}
            Err(_) => {
                if policy.state() != before {
                    return Err(format!("query {t}: a rejected input changed the state"));
                }
            }
        }
        let state = policy.state();
        if state.spent > state.budget {
            return Err(format!(
                "query {t}: spent {} exceeds budget {}",
                state.spent, state.budget
            ));
        }
    }
    Ok(routed)
}

/// Reads fuzz input a piece at a time; running out yields zeros, so every input decodes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A scalar biased toward what breaks budget arithmetic: zero, negatives, NaN, ±∞, huge,
    /// tiny and subnormal values, or any `f32` bit pattern.
    fn real<F: pilot_core::Real>(&mut self) -> F {
        let v = match self.byte() % 16 {
            0 => 0.0,
            1 => 1.0,
            2 => -1.0,
            3 => f64::NAN,
            4 => f64::INFINITY,
            5 => f64::NEG_INFINITY,
            6 => 3.0e38,
            7 => f64::MAX,
            8 => 1e-45,
            9 => 1e-300,
            10 => {
                let bits = [self.byte(), self.byte(), self.byte(), self.byte()];
                f64::from(f32::from_bits(u32::from_le_bytes(bits)))
            }
            11 => f64::from(self.byte()) * 1e3,
            _ => f64::from(self.byte()) / 64.0,
        };
        F::from_f64(v)
    }
}

/// Decodes an MCKP instance with [`instance_from_bytes`] and runs [`check_offline`] on it.
///
/// # Errors
/// As [`check_offline`].
pub fn check_mckp_bytes(data: &[u8]) -> Result<(), String> {
    match instance_from_bytes(data) {
        // ≤ 6 classes and capacity < 256 keep every state list small: 16 MB is plenty.
        Some(instance) => {
            check_offline_using(&mut Exact::with_memory_budget(16 << 20), &instance).map(|_| ())
        }
        None => Ok(()),
    }
}

/// Builds an online policy (threshold or pacing, `f32` or `f64`, any spread, reserve, cost
/// cap and value source) and a stream of queries with arbitrary scores and costs — NaN,
/// negative, infinite and huge included, sometimes of the wrong length — from fuzz input, and
/// runs [`check_online`]: the spend never exceeds the budget, a routed arm's cost is a valid
/// cost, a rejected query leaves the state unchanged. Configurations the policy rejects are
/// skipped.
///
/// # Errors
/// As [`check_online`].
pub fn check_online_bytes(data: &[u8]) -> Result<(), String> {
    let mut bytes = Bytes(data);
    let head = bytes.byte();
    if head & 0x80 == 0 {
        online_from::<f32>(head, &mut bytes)
    } else {
        online_from::<f64>(head, &mut bytes)
    }
}

fn online_from<F: pilot_core::Real>(head: u8, bytes: &mut Bytes<'_>) -> Result<(), String> {
    use crate::{
        OnlineConfig, PacingParams, PacingPolicy, Spread, ThresholdParams, ThresholdPolicy, ValueOf,
    };
    let arms = usize::from(bytes.byte() % 4) + 1;
    let mut config = OnlineConfig::<F>::new(arms, bytes.real());
    if head & 0x01 != 0 {
        config = config.with_reserve(bytes.real());
    }
    if head & 0x02 != 0 {
        config = config.with_max_cost(bytes.real());
    }
    config = config.with_value(match bytes.byte() % 3 {
        0 => ValueOf::Estimate,
        1 => ValueOf::Score,
        _ => ValueOf::Optimistic(bytes.real()),
    });
    let spread = match (head >> 2) % 4 {
        0 => Ok(Spread::Whole),
        1 => Spread::uniform(u64::from(bytes.byte()), usize::from(bytes.byte() % 40)),
        2 => {
            let horizon = u64::from(bytes.byte());
            let shares: Vec<F> = (0..bytes.byte() % 6).map(|_| bytes.real()).collect();
            Spread::shares(horizon, &shares)
        }
        _ => Spread::rate(bytes.real(), bytes.real()),
    };
    let Ok(spread) = spread else {
        return Ok(());
    };
    config = config.with_spread(spread);
    let threshold = head & 0x10 == 0;
    let (upper, lower) = (bytes.real(), bytes.real());
    let mut pacing = PacingParams::new(bytes.real());
    if head & 0x20 != 0 {
        pacing = pacing.with_target(bytes.real()).with_step(bytes.real());
    }
    let mut stream = Vec::new();
    while !bytes.0.is_empty() && stream.len() < 64 {
        let n = if bytes.byte().is_multiple_of(16) {
            usize::from(bytes.byte() % 6)
        } else {
            arms
        };
        let scores = (0..n)
            .map(|_| ArmScore {
                estimate: bytes.real(),
                width: bytes.real(),
                score: bytes.real(),
            })
            .collect();
        let costs = (0..n).map(|_| bytes.real()).collect();
        stream.push((scores, costs));
    }
    if threshold {
        let Ok(params) = ThresholdParams::new(upper, lower) else {
            return Ok(());
        };
        let Ok(mut policy) = ThresholdPolicy::new(config, params) else {
            return Ok(());
        };
        check_online(&mut policy, &stream).map(|_| ())
    } else {
        let Ok(mut policy) = PacingPolicy::new(config, pacing) else {
            return Ok(());
        };
        check_online(&mut policy, &stream).map(|_| ())
    }
}

/// Valid inputs for [`check_online_bytes`]: each policy and spread with sensible settings and
/// a short stream of ordinary queries. Seeds for the corpus.
pub fn online_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for head in [0x00u8, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x1c, 0x30, 0x83, 0x93] {
        let mut s = vec![head, 2];
        s.extend_from_slice(&[11, 10]); // budget 10 000
        if head & 0x01 != 0 {
            s.extend_from_slice(&[12, 4]); // reserve
        }
        if head & 0x02 != 0 {
            s.extend_from_slice(&[11, 2]); // cap
        }
        s.push(0);
        match (head >> 2) % 4 {
            1 => s.extend_from_slice(&[100, 4]),
            2 => s.extend_from_slice(&[100, 3, 12, 64, 12, 32, 12, 16]),
            3 => s.extend_from_slice(&[12, 200, 12, 100]),
            _ => {}
        }
        s.extend_from_slice(&[12, 255, 12, 1, 12, 64]); // upper, lower, initial price
        if head & 0x20 != 0 {
            s.extend_from_slice(&[12, 100, 12, 3]);
        }
        for q in 0..12u8 {
            s.push(1);
            for a in 0..3u8 {
                s.extend_from_slice(&[12, 20 + 7 * a + q, 12, 8, 12, 30 + a]);
            }
            for a in 0..3u8 {
                s.extend_from_slice(&[11, 1 + a * 3 + q % 4]);
            }
        }
        seeds.push(s);
    }
    seeds
}
