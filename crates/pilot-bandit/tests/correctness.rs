//! Correctness of the ridge policies: batch-ridge agreement, SPD inverses, PILOT's prior, forms
//! agreeing, drift, arm management, Thompson draws and snapshot errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use pilot_bandit::{
    EpsilonGreedy, EpsilonGreedyFixed, EpsilonGreedyVec, FixedArms, LinTs, LinTsFixed, LinTsVec,
    LinUcb, LinUcbConfig, LinUcbFixed, LinUcbVec, LinearArms, UniformRandom,
};
use pilot_core::envelope::{self, HEADER_LEN};
use pilot_core::{ArmId, ArmScore, ErrorKind, Policy, PolicyExt, Real, Snapshot};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

fn context<F: Real>(rng: &mut Pcg64, d: usize) -> Vec<F> {
    (0..d)
        .map(|_| F::from_f64(rng.next_u32() as f64 / u32::MAX as f64 * 2.0 - 1.0))
        .collect()
}

fn ucb<F: Real>(alpha: f64, lambda: f64) -> LinUcbConfig<F> {
    LinUcb::params()
        .alpha(F::from_f64(alpha))
        .lambda(F::from_f64(lambda))
        .check()
        .unwrap()
}

/// θ = (λI + ΣxxᵀA)⁻¹(λθ₀ + Σrx) and A itself, in f64 by Cholesky.
fn batch_ridge(lambda: f64, prior: &[f64], xs: &[Vec<f64>], rs: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let d = prior.len();
    let mut a = vec![0.0; d * d];
    let mut b: Vec<f64> = prior.iter().map(|p| lambda * p).collect();
    for i in 0..d {
        a[i * d + i] = lambda;
    }
    for (x, r) in xs.iter().zip(rs) {
        for i in 0..d {
            b[i] += r * x[i];
            for j in 0..d {
                a[i * d + j] += x[i] * x[j];
            }
        }
    }
    let mut l = vec![0.0; d * d];
    pilot_embed::cholesky(&a, d, &mut l).unwrap();
    pilot_embed::cholesky_solve(&l, &mut b).unwrap();
    (b, a)
}

#[test]
fn theta_equals_batch_ridge_in_f64_and_f32() {
    // Tolerances: 1e-9 absolute for the f64 learner after 400 rank-1 steps (round-off grows
    // about linearly in the step count from 1e-16), 2e-3 for f32.
    let (d, n, lambda) = (8, 400, 0.7);
    let prior: Vec<f64> = (0..d).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut p64 = LinUcbVec::<f64>::with_priors(ucb(1.0, lambda), &[Some(&prior)], d).unwrap();
    let prior32: Vec<f32> = prior.iter().map(|&v| v as f32).collect();
    let mut p32 = LinUcbVec::<f32>::with_priors(ucb(1.0, lambda), &[Some(&prior32)], d).unwrap();
    let mut rng = Pcg64::seed_from_u64(11);
    let (mut xs, mut rs) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let x: Vec<f64> = context(&mut rng, d);
        let r = (rng.next_u32() % 1000) as f64 / 999.0;
        p64.observe(ArmId(0), &x, r).unwrap();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        p32.observe(ArmId(0), &x32, r as f32).unwrap();
        xs.push(x);
        rs.push(r);
    }
    let (want, a) = batch_ridge(lambda, &prior, &xs, &rs);
    let got = p64.ridge().theta(ArmId(0)).unwrap();
    let got32 = p32.ridge().theta(ArmId(0)).unwrap();
    for i in 0..d {
        assert!(
            (got[i] - want[i]).abs() < 1e-9,
            "f64 θ[{i}] {} vs {}",
            got[i],
            want[i]
        );
        assert!((got32[i] as f64 - want[i]).abs() < 2e-3, "f32 θ[{i}]");
    }
    // A⁻¹·A = I.
    let mut a_inv = vec![0.0; d * d];
    p64.ridge().a_inv_full(ArmId(0), &mut a_inv).unwrap();
    for i in 0..d {
        for j in 0..d {
            let v: f64 = (0..d).map(|k| a_inv[i * d + k] * a[k * d + j]).sum();
            let e = if i == j { 1.0 } else { 0.0 };
            assert!((v - e).abs() < 1e-9, "(A⁻¹A)[{i}][{j}] = {v}");
        }
    }
}

#[test]
fn a_inverse_stays_symmetric_positive_definite() {
    let d = 16;
    let mut p = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 2, d).unwrap();
    let mut rng = Pcg64::seed_from_u64(3);
    for t in 0..3000 {
        // Large contexts and nearly collinear ones stress the rank-1 updates.
        let mut x: Vec<f32> = context(&mut rng, d);
        if t % 3 == 0 {
            x.iter_mut().for_each(|v| *v = *v * 0.01 + 3.0);
        }
        p.observe(ArmId(t % 2), &x, (t % 7) as f32 / 6.0).unwrap();
    }
    for arm in [ArmId(0), ArmId(1)] {
        // Stored packed, A⁻¹ is symmetric by construction; unpacked it must factor.
        assert_eq!(p.ridge().a_inv(arm).unwrap().len(), d * (d + 1) / 2);
        let mut m = vec![0.0f32; d * d];
        p.ridge().a_inv_full(arm, &mut m).unwrap();
        let mut l = vec![0.0f32; d * d];
        pilot_embed::cholesky(&m, d, &mut l).expect("A⁻¹ positive definite");
        assert!((0..d).all(|i| l[i * d + i] > 0.0));
    }
}

#[test]
fn pilot_with_a_huge_lambda_keeps_choosing_as_the_prior_says() {
    let d = 4;
    let priors: Vec<Vec<f32>> = (0..3)
        .map(|a| (0..d).map(|i| if i == a { 1.0 } else { 0.0 }).collect())
        .collect();
    let refs: Vec<Option<&[f32]>> = priors.iter().map(|p| Some(p.as_slice())).collect();
    let mut pilot = LinUcbVec::<f32>::with_priors(ucb(0.1, 1e6), &refs, d).unwrap();
    let mut plain = LinUcbVec::<f32>::with_priors(ucb(0.1, 1.0), &refs, d).unwrap();
    let mut rng = Pcg64::seed_from_u64(5);
    let (mut checked, mut plain_disagrees) = (0, 0);
    while checked < 300 {
        let x: Vec<f32> = context::<f32>(&mut rng, d)
            .iter()
            .map(|v| v.abs())
            .collect();
        let mut sorted = x[..3].to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] < 0.05 {
            continue;
        }
        let by_prior = (0..3).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
        let (arm, _) = pilot.select_vec(&x, &mut rng).unwrap();
        assert_eq!(arm.index(), by_prior);
        // The data contradicts the prior: the arm it favours earns 0, the others 1.
        for a in 0..3 {
            let r = if a == by_prior { 0.0 } else { 1.0 };
            pilot.observe(ArmId::new(a), &x, r).unwrap();
            plain.observe(ArmId::new(a), &x, r).unwrap();
        }
        let (p, _) = plain.select_vec(&x, &mut rng).unwrap();
        plain_disagrees += usize::from(p.index() != by_prior);
        checked += 1;
    }
    // With λ = 1 the same data overrides the prior: the test could tell the difference.
    assert!(
        plain_disagrees > 250,
        "plain LinUCB disagreed {plain_disagrees} times"
    );
}

/// Drives two policies with one seed and asserts identical decisions, scores and snapshots.
fn same_decisions<P: Policy<f32> + Snapshot, Q: Policy<f32> + Snapshot>(p: &mut P, q: &mut Q) {
    let (mut rp, mut rq) = (Pcg64::seed_from_u64(9), Pcg64::seed_from_u64(9));
    let mut inputs = Pcg64::seed_from_u64(10);
    let (k, d) = (p.arm_count(), p.dim());
    for t in 0..500 {
        let x: Vec<f32> = context(&mut inputs, d);
        let mut sp = vec![ArmScore::default(); k];
        let mut sq = vec![ArmScore::default(); k];
        let a = p.select(&x, &mut rp, &mut sp).unwrap();
        let b = q.select(&x, &mut rq, &mut sq).unwrap();
        assert_eq!(a, b, "step {t}");
        assert_eq!(sp, sq, "step {t}");
        let r = (inputs.next_u32() % 100) as f32 / 99.0;
        p.observe(a, &x, r).unwrap();
        q.observe(b, &x, r).unwrap();
    }
    assert_eq!(p.save_vec().unwrap(), q.save_vec().unwrap());
}

#[test]
fn fixed_and_vec_forms_make_identical_decisions() {
    let prior = [0.5f32, -0.2, 0.1, 0.0, 0.3, 0.2];
    let priors = [Some(&prior[..]), None, None, Some(&prior[..])];
    let c = ucb(0.8, 2.0);
    same_decisions(
        &mut LinUcbFixed::<4, 6>::with_priors(c, &priors, 6).unwrap(),
        &mut LinUcbVec::with_priors(c, &priors, 6).unwrap(),
    );
    let c = LinTs::params().scale(0.5).discount(0.97).check().unwrap();
    same_decisions(
        &mut LinTsFixed::<4, 6>::with_priors(c, &priors, 6).unwrap(),
        &mut LinTsVec::with_priors(c, &priors, 6).unwrap(),
    );
    let c = EpsilonGreedy::params().epsilon(0.2).check().unwrap();
    same_decisions(
        &mut EpsilonGreedyFixed::<4, 6>::new(c, 4, 6).unwrap(),
        &mut EpsilonGreedyVec::new(c, 4, 6).unwrap(),
    );
}

#[test]
fn the_fixed_form_for_8_arms_of_16_fits_in_16_kib() {
    let size = core::mem::size_of::<LinUcbFixed<8, 16, f32>>();
    println!("LinUcbFixed<8, 16, f32>: {size} bytes");
    assert!(size <= 16 * 1024, "{size} bytes");
    assert_eq!(
        core::mem::size_of::<FixedArms<8, 16, f32>>(),
        4 * (8 * (16 * 16 + 3 * 16) + 16 * 16 + 4 * 16) + 8 * 8
    );
}

#[test]
fn discount_forgets_old_rewards_but_keeps_the_prior() {
    let d = 3;
    let prior = [0.0f64, 0.0, 0.6];
    let run = |gamma: f64| {
        let c = LinUcb::params().discount(gamma).check().unwrap();
        let mut p = LinUcbVec::<f64>::with_priors(c, &[Some(&prior)], d).unwrap();
        let x = [1.0, 0.5, 0.0];
        for t in 0..5000 {
            // Rewards flip from 1 to 0 after step 2500; contexts never touch coordinate 2.
            let r = if t < 2500 { 1.0 } else { 0.0 };
            p.observe(ArmId(0), &x, r).unwrap();
        }
        let e = p.ridge().estimate(ArmId(0), &x).unwrap();
        let theta = p.ridge().theta(ArmId(0)).unwrap().to_vec();
        let a_inv = p.ridge().a_inv(ArmId(0)).unwrap().to_vec();
        (e.mean, theta, a_inv)
    };
    let (mean_still, _, _) = run(1.0);
    let (mean_drift, theta, a_inv) = run(0.95);
    assert!(
        (mean_still - 0.5).abs() < 0.01,
        "γ = 1 averages: {mean_still}"
    );
    assert!(
        mean_drift.abs() < 0.01,
        "γ = 0.95 follows the change: {mean_drift}"
    );
    // The prior's coordinate, never visited by a context, is kept, and A⁻¹ stays bounded
    // (plain A ← γA would have scaled it by 0.95^-5000).
    assert!((theta[2] - 0.6).abs() < 1e-6, "θ₂ = {}", theta[2]);
    assert!(a_inv.iter().all(|v| v.abs() < 10.0), "{a_inv:?}");
}

#[test]
fn arms_join_and_leave_with_documented_indices() {
    let d = 3;
    let mut p = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 3, d).unwrap();
    let x = [1.0, 0.0, 0.0];
    p.observe(ArmId(2), &x, 1.0).unwrap();
    let theta2 = p.ridge().theta(ArmId(2)).unwrap().to_vec();
    p.remove_arm(ArmId(1)).unwrap();
    assert_eq!(p.arm_count(), 2);
    assert_eq!(p.ridge().theta(ArmId(1)).unwrap(), &theta2[..]);
    let prior = [0.1f32, 0.2, 0.3];
    assert_eq!(p.add_arm(Some(&prior)).unwrap(), ArmId(2));
    assert_eq!(p.ridge().theta(ArmId(2)).unwrap(), &prior);
    let before = p.save_vec().unwrap();
    assert_eq!(
        p.remove_arm(ArmId(3)).unwrap_err().kind(),
        ErrorKind::UnknownArm
    );
    assert_eq!(
        p.add_arm(Some(&[1.0, f32::NAN, 0.0])).unwrap_err().kind(),
        ErrorKind::NonFinite
    );
    assert_eq!(
        p.add_arm(Some(&[1.0])).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(p.save_vec().unwrap(), before);
    let (arm, scores) = p.select_vec(&x, &mut Pcg64::seed_from_u64(1)).unwrap();
    assert_eq!(scores.len(), 3);
    assert_eq!(arm, ArmId(1), "the arm that earned 1 on x, now at index 1");
    // A snapshot of the grown pool restores into a pool of another size only through the
    // explicit resizing call.
    let mut other = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 1, d).unwrap();
    other.restore_resizing(&before).unwrap();
    assert_eq!(other.arm_count(), 3);
    assert_eq!(other.save_vec().unwrap(), before);
}

#[test]
fn restore_refuses_another_arm_count_unless_asked_to_resize() {
    let d = 3;
    let x = [1.0f32, 0.5, 0.0];
    let mut four = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 4, d).unwrap();
    four.observe(ArmId(3), &x, 0.9).unwrap();
    let bytes = four.save_vec().unwrap();

    let mut three = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 3, d).unwrap();
    three.observe(ArmId(1), &x, 0.2).unwrap();
    let before = three.save_vec().unwrap();
    let err = three.restore(&bytes).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch, "{err}");
    assert_eq!(three.arm_count(), 3, "the pool did not grow");
    assert_eq!(three.save_vec().unwrap(), before, "nothing changed");
    // A smaller snapshot is refused the same way (the pool does not shrink either).
    let mut five = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 5, d).unwrap();
    assert_eq!(
        five.restore(&bytes).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(five.arm_count(), 5);

    // Every ridge policy and the baselines keep the same contract.
    let ts = LinTs::params().check().unwrap();
    let ts4 = LinTsVec::<f32>::new(ts, 4, d).unwrap().save_vec().unwrap();
    let mut ts3 = LinTsVec::<f32>::new(ts, 3, d).unwrap();
    assert_eq!(
        ts3.restore(&ts4).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    let uni4 = UniformRandom::<f32>::new(4, d).unwrap().save_vec().unwrap();
    let mut uni3 = UniformRandom::<f32>::new(3, d).unwrap();
    assert_eq!(
        uni3.restore(&uni4).unwrap_err().kind(),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(uni3.arm_count(), 3);

    // Growing the pool from a snapshot is the explicit call.
    three.restore_resizing(&bytes).unwrap();
    assert_eq!(three.arm_count(), 4);
    assert_eq!(three.save_vec().unwrap(), bytes);
}

#[test]
fn thompson_select_draws_match_full_parameter_draws() {
    let d = 4;
    let c = LinTs::params().scale(0.8).check().unwrap();
    let mut p = LinTsVec::<f64>::new(c, 1, d).unwrap();
    let mut rng = Pcg64::seed_from_u64(2);
    for _ in 0..20 {
        let x: Vec<f64> = context(&mut rng, d);
        p.observe(ArmId(0), &x, 0.3).unwrap();
    }
    let x = [0.5, -1.0, 0.25, 0.75];
    let n = 20_000;
    let (mut sum, mut sq) = (0.0, 0.0);
    let (mut sum_full, mut sq_full) = (0.0, 0.0);
    let mut theta = [0.0; 4];
    let mut scores = [ArmScore::default(); 1];
    for _ in 0..n {
        p.select(&x, &mut rng, &mut scores).unwrap();
        sum += scores[0].score;
        sq += scores[0].score * scores[0].score;
        p.sample_parameters(ArmId(0), &mut rng, &mut theta).unwrap();
        let v: f64 = theta.iter().zip(&x).map(|(t, x)| t * x).sum();
        sum_full += v;
        sq_full += v * v;
    }
    let e = p.ridge().estimate(ArmId(0), &x).unwrap();
    let sd = 0.8 * e.width;
    let (m, m_full) = (sum / n as f64, sum_full / n as f64);
    let var = sq / n as f64 - m * m;
    let var_full = sq_full / n as f64 - m_full * m_full;
    assert!((scores[0].width - sd).abs() < 1e-12);
    for (mean, var) in [(m, var), (m_full, var_full)] {
        assert!(
            (mean - e.mean).abs() < 4.0 * sd / (n as f64).sqrt(),
            "mean {mean} vs {}",
            e.mean
        );
        assert!(
            (var / (sd * sd) - 1.0).abs() < 0.05,
            "variance {var} vs {}",
            sd * sd
        );
    }
}

#[test]
fn bad_snapshots_name_their_fault_and_change_nothing() {
    let c = ucb(1.0, 1.0);
    let mut p = LinUcbFixed::<2, 2, f64>::new(c, 2, 2).unwrap();
    p.observe(ArmId(1), &[1.0, 2.0], 0.5).unwrap();
    let mut buf = [0u8; LinUcbFixed::<2, 2, f64>::SNAPSHOT_LEN];
    let n = p.save(&mut buf).unwrap();
    let good = buf[..n].to_vec();
    let kind = |p: &mut LinUcbFixed<2, 2, f64>, bytes: &[u8]| p.restore(bytes).unwrap_err().kind();

    assert_eq!(kind(&mut p, &good[..n - 3]), ErrorKind::Truncated);
    let mut flipped = good.clone();
    flipped[HEADER_LEN + 5] ^= 1;
    assert_eq!(kind(&mut p, &flipped), ErrorKind::ChecksumMismatch);
    let mut version = good.clone();
    version[4] = 9;
    assert_eq!(kind(&mut p, &version), ErrorKind::VersionMismatch);
    let ts = LinTsFixed::<2, 2, f64>::new(LinTs::params().check().unwrap(), 2, 2).unwrap();
    assert_eq!(
        kind(&mut p, &ts.save_vec().unwrap()),
        ErrorKind::WrongFormat
    );
    let other_dim = LinUcbVec::<f64>::new(c, 2, 3).unwrap().save_vec().unwrap();
    assert_eq!(kind(&mut p, &other_dim), ErrorKind::DimensionMismatch);
    let other_count = LinUcbVec::<f64>::new(c, 3, 2).unwrap().save_vec().unwrap();
    assert_eq!(kind(&mut p, &other_count), ErrorKind::DimensionMismatch);
    let single = LinUcbVec::<f32>::new(ucb(1.0, 1.0), 2, 2)
        .unwrap()
        .save_vec()
        .unwrap();
    assert_eq!(kind(&mut p, &single), ErrorKind::DimensionMismatch);

    // An A⁻¹ with a negative diagonal, with a valid frame: arm 0's A⁻¹[0][0] starts at payload
    // offset width (1) + 5 scalars (40) + dim (1) + count (1) + updates (1) + prior (16) = 60;
    // its last little-endian byte holds the sign.
    let mut payload = good[HEADER_LEN..].to_vec();
    payload[67] ^= 0x80;
    let mut framed = vec![0u8; HEADER_LEN + payload.len()];
    framed[HEADER_LEN..].copy_from_slice(&payload);
    let len = envelope::seal(
        &mut framed,
        LinUcbFixed::<2, 2, f64>::MAGIC,
        pilot_bandit::SNAPSHOT_VERSION,
        payload.len(),
    )
    .unwrap();
    assert_eq!(kind(&mut p, &framed[..len]), ErrorKind::Corrupt);

    assert_eq!(
        p.save_vec().unwrap(),
        good,
        "every failed restore left the state alone"
    );
    let mut small = [0u8; 20];
    assert_eq!(
        p.save(&mut small).unwrap_err().kind(),
        ErrorKind::BufferTooSmall
    );
}

#[test]
fn storage_reports_its_shape() {
    let arms = FixedArms::<3, 5, f32>::zeroed();
    assert_eq!((arms.arm_count(), arms.dim()), (3, 5));
    assert!(arms.arm(3).is_none());
    assert_eq!(
        LinUcbFixed::<3, 5>::new(ucb(1.0, 1.0), 2, 5)
            .unwrap_err()
            .kind(),
        ErrorKind::DimensionMismatch
    );
    assert_eq!(
        LinUcbVec::<f32>::new(ucb(1.0, 1.0), 2, 0)
            .unwrap_err()
            .kind(),
        ErrorKind::DimensionMismatch
    );
}

/// What `select` reports is what `Ridge::estimate` says, to the bit, whether the widths went
/// through staged weights (small d) or the four-row kernel (large d).
#[test]
fn select_reports_exactly_what_estimate_says() {
    fn check<F: Real>(d: usize) {
        let mut p = LinUcbVec::<F>::new(ucb(0.7, 1.0), 3, d).unwrap();
        let mut rng = Pcg64::seed_from_u64(11);
        let mut scores = vec![ArmScore::default(); 3];
        for t in 0..40 {
            let x: Vec<F> = context(&mut rng, d);
            let arm = p.select(&x, &mut rng, &mut scores).unwrap();
            for (i, s) in scores.iter().enumerate() {
                let e = p.ridge().estimate(ArmId::new(i), &x).unwrap();
                assert_eq!(
                    s.width.to_f64().to_bits(),
                    e.width.to_f64().to_bits(),
                    "d = {d}"
                );
                assert_eq!(s.estimate.to_f64().to_bits(), e.mean.to_f64().to_bits());
            }
            p.observe(arm, &x, F::from_f64((t % 4) as f64 / 3.0))
                .unwrap();
        }
    }
    for d in [1, 3, 16, 64, 90, 91, 100] {
        check::<f32>(d);
    }
    for d in [16, 63, 64] {
        check::<f64>(d);
    }
}
