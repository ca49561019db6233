//! The conformance kit: properties every `Policy + Snapshot` must satisfy, ours or a plugin's.
//!
//! [`check_policy`] builds fresh policies from a factory, drives them with seeded random
//! contexts and rewards, and returns a [`Report`] with one line per property instead of
//! panicking, so `pilot plugin check` can print it. A policy that panics fails the property it
//! panicked in. [`assert_conforms`] is the test-suite form.

use std::boxed::Box;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use pilot_core::{ArmId, ArmScore, ErrorKind, Policy, Real, Reward, Snapshot, argmax_score};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

/// How the kit drives a policy.
#[derive(Clone, Copy, Debug)]
pub struct KitOptions<F> {
    /// Seed of every random stream the kit uses.
    pub seed: u64,
    /// Select/update rounds per property.
    pub steps: usize,
    /// The rewards the policy accepts; the kit draws inside and probes outside it.
    pub reward_range: (F, F),
    /// Spread of the random contexts: each entry uniform in `[-scale, scale]`.
    pub context_scale: F,
}

impl<F: Real> Default for KitOptions<F> {
    fn default() -> Self {
        Self {
            seed: 0x5EED,
            steps: 64,
            reward_range: (F::ZERO, F::ONE),
            context_scale: F::ONE,
        }
    }
}

/// The outcome of one property.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// The property, e.g. `"snapshot round trip"`.
    pub name: &'static str,
    /// `Ok` or what went wrong.
    pub result: Result<(), String>,
}

/// Every property's outcome, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// One entry per property.
    pub checks: Vec<CheckOutcome>,
}

impl Report {
    /// Whether every property held.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.result.is_ok())
    }

    /// The properties that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckOutcome> {
        self.checks.iter().filter(|c| c.result.is_err())
    }
}

impl core::fmt::Display for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in &self.checks {
            match &c.result {
                Ok(()) => writeln!(f, "ok    {}", c.name)?,
                Err(why) => writeln!(f, "FAIL  {}: {why}", c.name)?,
            }
        }
        let failed = self.failures().count();
        write!(
            f,
            "{} passed, {} failed",
            self.checks.len() - failed,
            failed
        )
    }
}

type Outcome = Result<(), String>;

/// A named bad-input probe.
type Case<'a, P> = (&'static str, Box<dyn FnMut(&mut P) -> Outcome + 'a>);

/// Runs every property on policies made by `make` (each call must return an identical, fresh
/// policy) and reports each outcome.
pub fn check_policy<F, P, M>(mut make: M, options: &KitOptions<F>) -> Report
where
    F: Real,
    P: Policy<F> + Snapshot,
    M: FnMut() -> P,
{
    let mut report = Report::default();
    let mut run = |name: &'static str, check: &mut dyn FnMut() -> Outcome| {
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
            Ok(r) => r,
            Err(_) => Err(String::from("the policy panicked")),
        };
        report.checks.push(CheckOutcome { name, result });
    };
    let o = *options;
    run("shape: at least one arm and one dimension", &mut || {
        let p = make();
        if p.arm_count() == 0 || p.dim() == 0 {
            return Err(format!("arm_count {} dim {}", p.arm_count(), p.dim()));
        }
        Ok(())
    });
    run(
        "select returns a valid arm that maximises its own scores",
        &mut || valid_arms(&mut make(), &o),
    );
    run("deterministic under a seed", &mut || {
        deterministic(&mut make(), &mut make(), &o)
    });
    run("snapshot round trip restores exactly", &mut || {
        round_trip(&mut make(), &mut make(), &o)
    });
    run("bad input is an error and changes nothing", &mut || {
        bad_input(&mut make(), &mut make(), &o)
    });
    run(
        "corrupt snapshots are rejected and change nothing",
        &mut || corrupt_snapshots(&mut make(), &o),
    );
    report
}

/// [`check_policy`] for tests: panics with the report unless every property held.
///
/// # Panics
/// When a property fails.
pub fn assert_conforms<F, P, M>(make: M, options: &KitOptions<F>)
where
    F: Real,
    P: Policy<F> + Snapshot,
    M: FnMut() -> P,
{
    let report = check_policy(make, options);
    assert!(report.passed(), "conformance failed:\n{report}");
}

/// A stream of contexts and rewards from one seed.
struct Inputs<F> {
    rng: Pcg64,
    options: KitOptions<F>,
}

impl<F: Real> Inputs<F> {
    fn new(options: &KitOptions<F>, salt: u64) -> Self {
        Self {
            rng: Pcg64::seed_from_u64(options.seed ^ salt),
            options: *options,
        }
    }

    fn context(&mut self, dim: usize) -> Vec<F> {
        let s = self.options.context_scale;
        (0..dim)
            .map(|_| {
                let u: F = crate::random::uniform(&mut self.rng);
                (u + u - F::ONE) * s
            })
            .collect()
    }

    fn reward(&mut self) -> F {
        let (min, max) = self.options.reward_range;
        let u: F = crate::random::uniform(&mut self.rng);
        min + (max - min) * u
    }
}

fn save<P: Snapshot>(p: &P) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; p.snapshot_len()];
    let n = p.save(&mut buf).map_err(|e| format!("save failed: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

/// One round: select on a fresh context, learn a reward for the chosen arm.
fn step<F: Real, P: Policy<F>>(
    p: &mut P,
    inputs: &mut Inputs<F>,
    rng: &mut dyn RngCore,
) -> Result<(ArmId, Vec<ArmScore<F>>), String> {
    let x = inputs.context(p.dim());
    let mut scores = vec![ArmScore::default(); p.arm_count()];
    let arm = p
        .select(&x, rng, &mut scores)
        .map_err(|e| format!("select failed on a valid context: {e}"))?;
    let r = Reward::new(inputs.reward()).map_err(|e| format!("{e}"))?;
    p.update(arm, &x, r)
        .map_err(|e| format!("update failed on valid input: {e}"))?;
    Ok((arm, scores))
}

fn same_scores<F: Real>(a: &[ArmScore<F>], b: &[ArmScore<F>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.estimate.to_f64().to_bits() == y.estimate.to_f64().to_bits()
                && x.width.to_f64().to_bits() == y.width.to_f64().to_bits()
                && x.score.to_f64().to_bits() == y.score.to_f64().to_bits()
        })
}

fn valid_arms<F: Real, P: Policy<F>>(p: &mut P, o: &KitOptions<F>) -> Outcome {
    let mut inputs = Inputs::new(o, 1);
    let mut rng = Pcg64::seed_from_u64(o.seed);
    for t in 0..o.steps {
        let (arm, scores) = step(p, &mut inputs, &mut rng)?;
        if arm.index() >= p.arm_count() {
            return Err(format!(
                "step {t}: arm {} of {}",
                arm.index(),
                p.arm_count()
            ));
        }
        if argmax_score(&scores) != Some(arm) {
            return Err(format!(
                "step {t}: returned arm {} but the highest score (ties to lowest index) is {:?}",
                arm.index(),
                argmax_score(&scores).map(|a| a.index())
            ));
        }
        if let Some((i, s)) = scores
            .iter()
            .enumerate()
            .find(|(_, s)| !s.estimate.is_finite() || !(s.width >= F::ZERO) || !s.width.is_finite())
        {
            return Err(format!(
                "step {t}: arm {i} has estimate {} width {}",
                s.estimate, s.width
            ));
        }
    }
    Ok(())
}

fn deterministic<F: Real, P: Policy<F> + Snapshot>(
    a: &mut P,
    b: &mut P,
    o: &KitOptions<F>,
) -> Outcome {
    let (mut ia, mut ib) = (Inputs::new(o, 2), Inputs::new(o, 2));
    let (mut ra, mut rb) = (Pcg64::seed_from_u64(o.seed), Pcg64::seed_from_u64(o.seed));
    for t in 0..o.steps {
        let (arm_a, sa) = step(a, &mut ia, &mut ra)?;
        let (arm_b, sb) = step(b, &mut ib, &mut rb)?;
        if arm_a != arm_b || !same_scores(&sa, &sb) {
            return Err(format!("step {t}: two runs from one seed diverged"));
        }
    }
    if save(a)? != save(b)? {
        return Err(String::from(
            "two runs from one seed saved different snapshots",
        ));
    }
    Ok(())
}

/// Runs `steps` more rounds on both policies with equal inputs and compares every decision.
fn twins_agree<F: Real, P: Policy<F>>(
    a: &mut P,
    b: &mut P,
    o: &KitOptions<F>,
    salt: u64,
) -> Outcome {
    let (mut ia, mut ib) = (Inputs::new(o, salt), Inputs::new(o, salt));
    let (mut ra, mut rb) = (
        Pcg64::seed_from_u64(o.seed ^ salt),
        Pcg64::seed_from_u64(o.seed ^ salt),
    );
    for t in 0..o.steps.min(16) {
        let (arm_a, sa) = step(a, &mut ia, &mut ra)?;
        let (arm_b, sb) = step(b, &mut ib, &mut rb)?;
        if arm_a != arm_b || !same_scores(&sa, &sb) {
            return Err(format!("round {t} afterwards: decisions differ"));
        }
    }
    Ok(())
}

fn train<F: Real, P: Policy<F>>(p: &mut P, o: &KitOptions<F>, salt: u64) -> Outcome {
    let mut inputs = Inputs::new(o, salt);
    let mut rng = Pcg64::seed_from_u64(o.seed ^ salt);
    for _ in 0..o.steps {
        step(p, &mut inputs, &mut rng)?;
    }
    Ok(())
}

fn round_trip<F: Real, P: Policy<F> + Snapshot>(
    a: &mut P,
    b: &mut P,
    o: &KitOptions<F>,
) -> Outcome {
    train(a, o, 3)?;
    let bytes = save(a)?;
    if bytes.len() > a.snapshot_len() {
        return Err(format!(
            "saved {} bytes, over snapshot_len {}",
            bytes.len(),
            a.snapshot_len()
        ));
    }
    if let Some(short) = bytes.len().checked_sub(1) {
        let mut small = vec![0u8; short];
        match a.save(&mut small) {
            Err(e) if e.kind() == ErrorKind::BufferTooSmall => {}
            Err(e) => return Err(format!("a short save buffer gave {e}, not BufferTooSmall")),
            Ok(_) => return Err(String::from("save succeeded in a buffer one byte short")),
        }
    }
    b.restore(&bytes)
        .map_err(|e| format!("restore of a fresh save failed: {e}"))?;
    if save(b)? != bytes {
        return Err(String::from("restored state saves different bytes"));
    }
    twins_agree(a, b, o, 4)
}

/// Expects `result` to be an error of `kind`.
fn expect_err<T>(what: &str, result: pilot_core::Result<T>, kind: ErrorKind) -> Outcome {
    match result {
        Ok(_) => Err(format!("{what}: accepted")),
        Err(e) if e.kind() == kind => Ok(()),
        Err(e) => Err(format!("{what}: error {e}, expected kind {kind:?}")),
    }
}

fn bad_input<F: Real, P: Policy<F> + Snapshot>(
    p: &mut P,
    twin: &mut P,
    o: &KitOptions<F>,
) -> Outcome {
    train(p, o, 5)?;
    train(twin, o, 5)?;
    let before = save(p)?;
    let (d, k) = (p.dim(), p.arm_count());
    let mut inputs = Inputs::new(o, 6);
    let x = inputs.context(d);
    let mut rng = Pcg64::seed_from_u64(o.seed);
    let mut scores = vec![ArmScore::default(); k];
    let good = Reward::new(inputs.reward()).map_err(|e| format!("{e}"))?;
    let (min, max) = o.reward_range;
    let outside = max + (max - min) + F::ONE;
    let mut nan = x.clone();
    nan[0] = F::from_f64(f64::NAN);
    let mut inf = x.clone();
    inf[d - 1] = F::from_f64(f64::INFINITY);
    let long: Vec<F> = x.iter().copied().chain([F::ZERO]).collect();
    let short = &x[..d - 1];
    let mut too_many = vec![ArmScore::default(); k + 1];

    let cases: Vec<Case<'_, P>> = vec![
        (
            "select with a context one too long",
            Box::new(|p: &mut P| {
                expect_err(
                    "select(long)",
                    p.select(&long, &mut rng, &mut scores),
                    ErrorKind::DimensionMismatch,
                )
            }),
        ),
        (
            "select with a NaN context",
            Box::new(|p: &mut P| {
                let mut r = Pcg64::seed_from_u64(1);
                let mut s = vec![ArmScore::default(); k];
                expect_err(
                    "select(NaN)",
                    p.select(&nan, &mut r, &mut s),
                    ErrorKind::NonFinite,
                )
            }),
        ),
        (
            "select with an infinite context",
            Box::new(|p: &mut P| {
                let mut r = Pcg64::seed_from_u64(1);
                let mut s = vec![ArmScore::default(); k];
                expect_err(
                    "select(∞)",
                    p.select(&inf, &mut r, &mut s),
                    ErrorKind::NonFinite,
                )
            }),
        ),
        (
            "select with a scores buffer of the wrong length",
            Box::new(|p: &mut P| {
                let mut r = Pcg64::seed_from_u64(1);
                expect_err(
                    "select(scores)",
                    p.select(&x, &mut r, &mut too_many),
                    ErrorKind::DimensionMismatch,
                )
            }),
        ),
        (
            "update of an unknown arm",
            Box::new(|p: &mut P| {
                expect_err(
                    "update(arm K)",
                    p.update(ArmId::new(k), &x, good),
                    ErrorKind::UnknownArm,
                )
            }),
        ),
        (
            "update with a context of the wrong length",
            Box::new(|p: &mut P| {
                expect_err(
                    "update(short)",
                    p.update(ArmId(0), short, good),
                    ErrorKind::DimensionMismatch,
                )
            }),
        ),
        (
            "update with a NaN context",
            Box::new(|p: &mut P| {
                expect_err(
                    "update(NaN)",
                    p.update(ArmId(0), &nan, good),
                    ErrorKind::NonFinite,
                )
            }),
        ),
        (
            "update with a reward outside the range",
            Box::new(|p: &mut P| {
                let r = Reward::new(outside).map_err(|e| format!("{e}"))?;
                expect_err(
                    "update(reward)",
                    p.update(ArmId(0), &x, r),
                    ErrorKind::OutOfRange,
                )
            }),
        ),
    ];
    for (name, mut case) in cases {
        case(p).map_err(|e| format!("{name}: {e}"))?;
        if save(p)? != before {
            return Err(format!("{name}: the state changed"));
        }
    }
    twins_agree(p, twin, o, 7).map_err(|e| format!("after the bad inputs: {e}"))
}

fn corrupt_snapshots<F: Real, P: Policy<F> + Snapshot>(p: &mut P, o: &KitOptions<F>) -> Outcome {
    train(p, o, 8)?;
    let good = save(p)?;
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated by one byte", good[..good.len() - 1].to_vec()),
        ("half", good[..good.len() / 2].to_vec()),
        (
            "with a trailing byte",
            good.iter().copied().chain([0]).collect(),
        ),
    ];
    for (name, at) in [
        ("first byte flipped", 0),
        ("last byte flipped", good.len() - 1),
        ("middle byte flipped", good.len() / 2),
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x5A;
        cases.push((name, bad));
    }
    for (name, bytes) in cases {
        if p.restore(&bytes).is_ok() {
            return Err(format!("{name}: restore accepted it"));
        }
        if save(p)? != good {
            return Err(format!("{name}: a failed restore changed the state"));
        }
    }
    Ok(())
}
