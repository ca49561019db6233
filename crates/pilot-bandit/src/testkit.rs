//! Fuzzing oracles for the policies: hostile snapshot bytes and hostile select / update /
//! snapshot / restore / add / remove sequences. A fuzz target is three lines:
//!
//! ```
//! # let data: &[u8] = &[0, 1, 2, 3];
//! if let Err(why) = pilot_bandit::testkit::check_snapshot_bytes(data) {
//!     panic!("{why}");
//! }
//! ```
//!
//! Every check returns `Err(message)` instead of panicking so the same inputs can be replayed
//! by an ordinary test; a panic inside a policy is itself the finding.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use pilot_core::envelope::{self, HEADER_LEN};
use pilot_core::{ArmId, ArmScore, Policy, Real, Reward, Snapshot};
use rand_core::SeedableRng;
use rand_pcg::Pcg64;

use crate::storage::LinearArms;
use crate::{
    EpsilonGreedy, EpsilonGreedyFixed, EpsilonGreedyVec, FixedArm, LinTs, LinTsFixed, LinTsVec,
    LinUcb, LinUcbFixed, LinUcbVec, SNAPSHOT_VERSION, UniformRandom,
};

/// Context dimension of every policy the oracles build.
pub const DIM: usize = 3;
/// Arms of every policy the oracles build (fixed storage holds exactly this many).
pub const ARMS: usize = 2;

/// A policy as the oracles drive it: the trait contract plus a look at its learned state.
pub trait Subject<F: Real>: Policy<F> + Snapshot {
    /// Snapshot magic, so a fuzzed payload can be framed with a valid envelope and CRC.
    fn magic(&self) -> [u8; 4];

    /// Checks the learned state: every value finite, each A⁻¹ (packed, so symmetric by
    /// construction) with a positive diagonal: what a restore demands, so every reachable state
    /// can be restored.
    ///
    /// # Errors
    /// A message naming the first broken invariant.
    fn invariants(&self) -> Result<(), String>;

    /// Adds an arm, for runtime-sized pools; `None` when the pool is fixed.
    fn add_arm(&mut self, _prior: Option<&[F]>) -> Option<pilot_core::Result<ArmId>> {
        None
    }

    /// Removes an arm, for runtime-sized pools; `None` when the pool is fixed.
    fn remove_arm(&mut self, _arm: ArmId) -> Option<pilot_core::Result<()>> {
        None
    }
}

/// Checks one arm storage against [`Subject::invariants`].
///
/// # Errors
/// A message naming the arm and the broken invariant.
pub fn arms_invariants<F: Real, S: LinearArms<F>>(arms: &S) -> Result<(), String> {
    let d = arms.dim();
    for i in 0..arms.arm_count() {
        let arm = arms.arm(i).ok_or(format!("arm {i} missing"))?;
        for (name, values) in [
            ("A⁻¹", arm.a_inv),
            ("b", arm.b),
            ("θ̂", arm.theta),
            ("prior", arm.prior),
        ] {
            if let Some(j) = values.iter().position(|v| !v.is_finite()) {
                return Err(format!(
                    "arm {i}: {name}[{j}] = {} is not finite",
                    values[j].to_f64()
                ));
            }
        }
        for r in 0..d {
            let diag = arm.a_inv[crate::packed::diagonal(r)];
            if !(diag > F::ZERO) {
                return Err(format!(
                    "arm {i}: A⁻¹[{r},{r}] = {} is not positive",
                    diag.to_f64()
                ));
            }
        }
    }
    Ok(())
}

macro_rules! ridge_subject {
    ($policy:ident) => {
        impl<F: Real, S: LinearArms<F>> Subject<F> for $policy<S, F> {
            fn magic(&self) -> [u8; 4] {
                Self::MAGIC
            }
            fn invariants(&self) -> Result<(), String> {
                arms_invariants(self.ridge().arms())
            }
        }
    };
}
ridge_subject!(LinUcb);
ridge_subject!(LinTs);
ridge_subject!(EpsilonGreedy);

/// Runtime-sized pools: adding and removing arms is part of the sequence being fuzzed.
struct Growable<P>(P);

macro_rules! growable {
    ($vec:ident) => {
        impl<F: Real> Policy<F> for Growable<$vec<F>> {
            fn dim(&self) -> usize {
                self.0.dim()
            }
            fn arm_count(&self) -> usize {
                self.0.arm_count()
            }
            fn select(
                &mut self,
                context: &[F],
                rng: &mut dyn rand_core::RngCore,
                scores: &mut [ArmScore<F>],
            ) -> pilot_core::Result<ArmId> {
                self.0.select(context, rng, scores)
            }
            fn update(
                &mut self,
                arm: ArmId,
                context: &[F],
                reward: Reward<F>,
            ) -> pilot_core::Result<()> {
                self.0.update(arm, context, reward)
            }
        }
        impl<F: Real> Snapshot for Growable<$vec<F>> {
            fn snapshot_len(&self) -> usize {
                self.0.snapshot_len()
            }
            fn save(&self, out: &mut [u8]) -> pilot_core::Result<usize> {
                self.0.save(out)
            }
            // The pool grows and shrinks in these sequences, so its snapshots restore
            // through the explicit resizing call (`restore` refuses another arm count).
            fn restore(&mut self, bytes: &[u8]) -> pilot_core::Result<()> {
                self.0.restore_resizing(bytes)
            }
        }
        impl<F: Real> Subject<F> for Growable<$vec<F>> {
            fn magic(&self) -> [u8; 4] {
                self.0.magic()
            }
            fn invariants(&self) -> Result<(), String> {
                self.0.invariants()
            }
            fn add_arm(&mut self, prior: Option<&[F]>) -> Option<pilot_core::Result<ArmId>> {
                Some(self.0.add_arm(prior))
            }
            fn remove_arm(&mut self, arm: ArmId) -> Option<pilot_core::Result<()>> {
                Some(self.0.remove_arm(arm))
            }
        }
    };
}
growable!(LinUcbVec);
growable!(LinTsVec);
growable!(EpsilonGreedyVec);

macro_rules! baseline_subject {
    ($policy:ident) => {
        impl<F: Real> Subject<F> for $policy<F> {
            fn magic(&self) -> [u8; 4] {
                Self::MAGIC
            }
            fn invariants(&self) -> Result<(), String> {
                Ok(())
            }
        }
    };
}
baseline_subject!(UniformRandom);
baseline_subject!(FixedArm);

/// Number of policy shapes [`subject`] builds.
pub const SUBJECTS: u8 = 11;

/// Builds policy number `which % SUBJECTS` in the `F` width, with [`ARMS`] arms of dimension
/// [`DIM`] and a PILOT-style prior on arm 0. Every shape (each ridge policy in `Vec` and fixed
/// storage, drift on and off, the baselines) is reachable from one byte.
///
/// # Errors
/// A message if a policy cannot be built from valid settings (itself a finding).
pub fn subject<F: Real + 'static>(which: u8) -> Result<alloc::boxed::Box<dyn Subject<F>>, String> {
    use alloc::boxed::Box;
    let f = F::from_f64;
    let prior = [f(0.5), f(-0.25), f(1.0)];
    let priors: [Option<&[F]>; ARMS] = [Some(&prior), None];
    let err = |e: pilot_core::Error| format!("building subject {which}: {e}");
    let discount = if (which / SUBJECTS) % 2 == 1 {
        f(0.9)
    } else {
        F::ONE
    };
    let ucb = LinUcb::params()
        .alpha(f(1.5))
        .lambda(f(0.5))
        .discount(discount)
        .check()
        .map_err(err)?;
    let ts = LinTs::params()
        .scale(f(0.7))
        .discount(discount)
        .check()
        .map_err(err)?;
    let eg = EpsilonGreedy::params()
        .epsilon(f(0.2))
        .lambda(f(2.0))
        .discount(discount)
        .check()
        .map_err(err)?;
    Ok(match which % SUBJECTS {
        0 => Box::new(Growable(
            LinUcbVec::with_priors(ucb, &priors, DIM).map_err(err)?,
        )),
        1 => Box::new(Growable(
            LinTsVec::with_priors(ts, &priors, DIM).map_err(err)?,
        )),
        2 => Box::new(Growable(
            EpsilonGreedyVec::with_priors(eg, &priors, DIM).map_err(err)?,
        )),
        3 => Box::new(LinUcbFixed::<ARMS, DIM, F>::with_priors(ucb, &priors, DIM).map_err(err)?),
        4 => Box::new(LinTsFixed::<ARMS, DIM, F>::with_priors(ts, &priors, DIM).map_err(err)?),
        5 => Box::new(EpsilonGreedyFixed::<ARMS, DIM, F>::new(eg, ARMS, DIM).map_err(err)?),
        6 => Box::new(UniformRandom::<F>::new(ARMS, DIM).map_err(err)?),
        7 => Box::new(FixedArm::<F>::new(ArmId::new(1), ARMS, DIM).map_err(err)?),
        8 => Box::new(Growable(LinUcbVec::new(ucb, 0, DIM).map_err(err)?)),
        9 => Box::new(LinUcbFixed::<ARMS, DIM, F>::new(ucb, ARMS, DIM).map_err(err)?),
        _ => Box::new(
            FixedArm::<F>::new(ArmId::new(0), ARMS, DIM)
                .and_then(|p| p.with_reward_range(f(-1.0), f(2.0)))
                .map_err(err)?,
        ),
    })
}

/// Reads fuzz input a piece at a time; running out yields zeros, so every input decodes.
pub struct Bytes<'a> {
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// The next `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for o in &mut out {
            *o = self.byte();
        }
        out
    }

    /// A scalar biased toward the values that break numerics: zero, signs, NaN, ±∞, huge,
    /// tiny and subnormal values, or any `f64` bit pattern.
    pub fn real<F: Real>(&mut self) -> F {
        let tag = self.byte();
        let v = match tag % 20 {
            0 => 0.0,
            1 => 1.0,
            2 => -1.0,
            3 => 0.5,
            4 => f64::NAN,
            5 => f64::INFINITY,
            6 => f64::NEG_INFINITY,
            7 => 1e4,
            8 => -1e4,
            9 => 1e19,
            10 => 3.0e38,
            11 => f64::MAX,
            12 => 1e-38,
            13 => 1e-45,
            14 => -0.0,
            15 => f64::from(self.byte()) / 255.0,
            16 => f64::from(f32::from_bits(u32::from_le_bytes(self.array()))),
            17 => f64::from_bits(u64::from_le_bytes(self.array())),
            _ => (f64::from(self.byte()) - 128.0) / 16.0,
        };
        F::from_f64(v)
    }

    /// `n` scalars from [`real`](Self::real).
    pub fn reals<F: Real>(&mut self, n: usize) -> Vec<F> {
        (0..n).map(|_| self.real()).collect()
    }
}

/// Saves `policy` into a fresh vector.
///
/// # Errors
/// The save error as a message.
pub fn save<F: Real>(policy: &dyn Subject<F>) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; policy.snapshot_len()];
    let n = policy
        .save(&mut buf)
        .map_err(|e| format!("save failed: {e}"))?;
    buf.truncate(n);
    Ok(buf)
}

/// Frames `payload` as a snapshot of `policy` with a valid header and CRC, so the fuzzer
/// reaches the payload decoder instead of stopping at the checksum.
pub fn seal_payload(magic: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADER_LEN + payload.len()];
    buf[HEADER_LEN..].copy_from_slice(payload);
    match envelope::seal(&mut buf, magic, SNAPSHOT_VERSION, payload.len()) {
        Ok(n) => buf.truncate(n),
        Err(_) => buf.clear(),
    }
    buf
}

/// After a successful restore: the state is valid, saving it and restoring that into a fresh
/// policy of the same shape gives the same bytes, and the policy still selects and learns.
fn check_restored<F: Real + 'static>(which: u8, policy: &mut dyn Subject<F>) -> Result<(), String> {
    policy
        .invariants()
        .map_err(|e| format!("restored state invalid: {e}"))?;
    let saved = save(policy)?;
    let mut fresh = subject::<F>(which)?;
    fresh
        .restore(&saved)
        .map_err(|e| format!("a re-saved restored state does not restore: {e}"))?;
    let again = save(fresh.as_ref())?;
    if again != saved {
        return Err(String::from("save → restore → save changed the bytes"));
    }
    // A baseline keeps no per-arm state, so a 30-byte snapshot may declare 4·10⁹ arms; the
    // scores buffer is the caller's, so only probe pools a caller could hold.
    if policy.arm_count() > MAX_PROBED_ARMS {
        return Ok(());
    }
    let unit = F::ONE / F::from_f64(DIM as f64).sqrt();
    let context = vec![unit; policy.dim()];
    let mut scores = vec![ArmScore::default(); policy.arm_count()];
    let mut rng = Pcg64::seed_from_u64(7);
    if let Ok(arm) = policy.select(&context, &mut rng, &mut scores)
        && arm.index() >= policy.arm_count()
    {
        return Err(format!(
            "select returned {arm} of {} arms",
            policy.arm_count()
        ));
    }
    Ok(())
}

/// Pools larger than this are not probed with a select after a restore (see
/// [`check_snapshot_bytes`]).
pub const MAX_PROBED_ARMS: usize = 1 << 16;

/// Restores arbitrary bytes into every policy shape: never a panic; on error the state is
/// unchanged; on success the state is valid and round-trips (see `check_restored`).
///
/// Input: byte 0 picks the policy and scalar width, byte 1 whether the rest is a raw snapshot
/// (envelope included) or a payload to frame with a valid envelope.
///
/// # Errors
/// A message naming the broken property.
pub fn check_snapshot_bytes(data: &[u8]) -> Result<(), String> {
    let mut bytes = Bytes::new(data);
    let which = bytes.byte();
    let mode = bytes.byte();
    if which & 0x80 == 0 {
        restore_into::<f32>(which & 0x7f, mode, bytes.rest())
    } else {
        restore_into::<f64>(which & 0x7f, mode, bytes.rest())
    }
}

fn restore_into<F: Real + 'static>(which: u8, mode: u8, rest: &[u8]) -> Result<(), String> {
    let mut policy = subject::<F>(which)?;
    let framed;
    let input = if mode.is_multiple_of(2) {
        rest
    } else {
        framed = seal_payload(policy.magic(), rest);
        &framed
    };
    let before = save(policy.as_ref())?;
    match policy.restore(input) {
        Ok(()) => check_restored(which, policy.as_mut()),
        Err(_) => {
            if save(policy.as_ref())? != before {
                return Err(String::from("a failed restore changed the state"));
            }
            Ok(())
        }
    }
}

/// Valid fuzz inputs for [`check_snapshot_bytes`]: each policy shape's snapshot after a few
/// updates, framed (mode 1, payload only) and raw (mode 0). Seeds for the corpus.
///
/// # Errors
/// A message if a policy fails to learn or save.
pub fn snapshot_seeds() -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for which in 0..SUBJECTS * 2 {
        for wide in [false, true] {
            let tag = which | if wide { 0x80 } else { 0 };
            let saved = if wide {
                trained::<f64>(which)?
            } else {
                trained::<f32>(which)?
            };
            let mut raw = vec![tag, 0];
            raw.extend_from_slice(&saved);
            out.push(raw);
            let mut framed = vec![tag, 1];
            framed.extend_from_slice(saved.get(HEADER_LEN..).unwrap_or(&[]));
            out.push(framed);
        }
    }
    Ok(out)
}

fn trained<F: Real + 'static>(which: u8) -> Result<Vec<u8>, String> {
    let mut policy = subject::<F>(which)?;
    let f = F::from_f64;
    for t in 0..5u32 {
        let x = [f(0.3), f(f64::from(t) * 0.1), f(-0.5)];
        let arm = ArmId::new(t as usize % policy.arm_count().max(1));
        if policy.arm_count() > 0 {
            let reward = Reward::new(f(0.75)).map_err(|e| format!("{e}"))?;
            policy
                .update(arm, &x, reward)
                .map_err(|e| format!("seed update: {e}"))?;
        }
    }
    save(policy.as_ref())
}

/// Drives a policy through an arbitrary sequence of select / update / save / restore /
/// corrupted restore / add arm / remove arm, with NaN, infinite, huge and tiny values:
/// never a panic; an operation that fails leaves the saved state byte-for-byte unchanged; a
/// select never changes the learned state; after each step the state is valid; a snapshot
/// always restores into a fresh policy of the same shape and re-saves to the same bytes.
///
/// Input: byte 0 picks the policy and scalar width (high bit: `f64`), then operations.
///
/// # Errors
/// A message naming the step and the broken property.
pub fn check_policy_ops(data: &[u8]) -> Result<(), String> {
    let mut bytes = Bytes::new(data);
    let which = bytes.byte();
    if which & 0x80 == 0 {
        run_ops::<f32>(which & 0x7f, &mut bytes)
    } else {
        run_ops::<f64>(which & 0x7f, &mut bytes)
    }
}

/// Steps after which [`check_policy_ops`] stops, so one input stays fast.
pub const MAX_STEPS: usize = 64;

fn run_ops<F: Real + 'static>(which: u8, bytes: &mut Bytes<'_>) -> Result<(), String> {
    let mut policy = subject::<F>(which)?;
    let mut rng = Pcg64::seed_from_u64(u64::from(which));
    let mut snapshot: Option<Vec<u8>> = None;
    for step in 0..MAX_STEPS {
        if bytes.is_empty() {
            break;
        }
        let op = bytes.byte();
        let before = save(policy.as_ref())?;
        let dim = policy.dim();
        let arms = policy.arm_count();
        // Mostly well-shaped inputs so the run gets deep; sometimes the wrong length.
        let len = |b: &mut Bytes<'_>, right: usize| {
            if b.byte().is_multiple_of(8) {
                usize::from(b.byte() % 6)
            } else {
                right
            }
        };
        let (label, failed, may_change) = match op % 8 {
            0 | 1 => {
                let n = len(bytes, dim);
                let x: Vec<F> = bytes.reals(n);
                let k = len(bytes, arms);
                let mut scores = vec![ArmScore::default(); k];
                let result = policy.select(&x, &mut rng, &mut scores);
                if let Ok(arm) = result
                    && arm.index() >= arms
                {
                    return Err(format!("step {step}: select returned {arm} of {arms} arms"));
                }
                ("select", result.is_err(), false)
            }
            2 | 3 => {
                let arm = ArmId::new(usize::from(bytes.byte() % 4));
                let n = len(bytes, dim);
                let x: Vec<F> = bytes.reals(n);
                let r: F = bytes.real();
                let result = Reward::new(r).and_then(|r| policy.update(arm, &x, r));
                ("update", result.is_err(), true)
            }
            4 => {
                snapshot = Some(save(policy.as_ref())?);
                ("save", false, false)
            }
            5 => {
                let Some(saved) = snapshot.as_deref() else {
                    continue;
                };
                let mut bad = saved.to_vec();
                let at = usize::from(u16::from_le_bytes(bytes.array()));
                let flip = bytes.byte();
                let cut = bytes.byte();
                if !bad.is_empty() {
                    let i = at % bad.len();
                    bad[i] ^= flip;
                    if cut.is_multiple_of(4) {
                        bad.truncate(i);
                    }
                }
                let result = policy.restore(&bad);
                if result.is_ok() && bad != saved {
                    // A corrupted snapshot slipped through the CRC: only acceptable if the state
                    // is still valid.
                    policy
                        .invariants()
                        .map_err(|e| format!("step {step}: {e}"))?;
                }
                ("corrupted restore", result.is_err(), true)
            }
            6 => {
                let prior: Option<Vec<F>> = if bytes.byte().is_multiple_of(2) {
                    None
                } else {
                    let n = len(bytes, dim);
                    Some(bytes.reals(n))
                };
                match policy.add_arm(prior.as_deref()) {
                    Some(result) => ("add arm", result.is_err(), true),
                    None => continue,
                }
            }
            _ => {
                let arm = ArmId::new(usize::from(bytes.byte() % 4));
                match policy.remove_arm(arm) {
                    Some(result) => ("remove arm", result.is_err(), true),
                    None => continue,
                }
            }
        };
        let after = save(policy.as_ref())?;
        if (failed || !may_change) && after != before {
            let why = if failed { "failed" } else { "succeeded" };
            return Err(format!(
                "step {step}: {label} {why} but changed the learned state"
            ));
        }
        policy
            .invariants()
            .map_err(|e| format!("step {step} ({label}): {e}"))?;
        if let Some(saved) = snapshot.as_deref()
            && op % 8 == 4
        {
            let mut fresh = subject::<F>(which)?;
            fresh
                .restore(saved)
                .map_err(|e| format!("step {step}: own snapshot does not restore: {e}"))?;
            if save(fresh.as_ref())? != saved {
                return Err(format!("step {step}: restore → save changed the bytes"));
            }
        }
    }
    // Restoring the last snapshot brings the policy back to it exactly.
    if let Some(saved) = snapshot {
        policy
            .restore(&saved)
            .map_err(|e| format!("own snapshot does not restore: {e}"))?;
        if save(policy.as_ref())? != saved {
            return Err(String::from("restore → save changed the bytes"));
        }
    }
    Ok(())
}

/// Valid fuzz inputs for [`check_policy_ops`]: for each policy shape and width, a sequence that
/// updates, selects, saves, restores a corrupted copy, adds and removes an arm. Seeds for the
/// corpus.
pub fn policy_ops_seeds() -> Vec<Vec<u8>> {
    let real = |v: u8| [15u8, v];
    let context = |out: &mut Vec<u8>| {
        out.push(1);
        for v in [40u8, 200, 90] {
            out.extend_from_slice(&real(v));
        }
    };
    let mut seeds = Vec::new();
    for which in 0..SUBJECTS * 2 {
        for wide in [0u8, 0x80] {
            let mut s = vec![which | wide];
            for arm in [0u8, 1, 0] {
                s.extend_from_slice(&[2, arm]);
                context(&mut s);
                s.extend_from_slice(&[3]); // reward 0.5
            }
            s.push(0);
            context(&mut s);
            s.push(1);
            s.push(4);
            s.extend_from_slice(&[5, 20, 0, 0x40, 1]);
            s.extend_from_slice(&[6, 1]);
            context(&mut s);
            s.extend_from_slice(&[7, 0, 4]);
            seeds.push(s);
        }
    }
    seeds
}
