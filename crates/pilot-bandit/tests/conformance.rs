//! Every policy of this crate passes the conformance kit, and the kit catches broken policies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may unwrap.

use pilot_bandit::conformance::{KitOptions, assert_conforms, check_policy};
use pilot_bandit::{
    EpsilonGreedy, EpsilonGreedyFixed, EpsilonGreedyVec, FixedArm, LinTs, LinTsFixed, LinTsVec,
    LinUcb, LinUcbFixed, LinUcbVec, PriorTrust, TrustParams, UniformRandom,
};
use pilot_core::{ArmId, ArmScore, Policy, Result, Reward, RngCore, Snapshot};

#[test]
fn ridge_policies_conform_in_both_forms_and_widths() {
    let o32 = KitOptions::<f32>::default();
    let prior = [0.3f32, -0.1, 0.2, 0.4];
    let priors = [Some(&prior[..]), None, Some(&prior[..])];
    let ucb = LinUcb::params().alpha(0.7).check().unwrap();
    assert_conforms(|| LinUcbFixed::<3, 4>::new(ucb, 3, 4).unwrap(), &o32);
    assert_conforms(|| LinUcbVec::with_priors(ucb, &priors, 4).unwrap(), &o32);
    let drifting = LinUcb::params().discount(0.9).check().unwrap();
    assert_conforms(
        || LinUcbVec::with_priors(drifting, &priors, 4).unwrap(),
        &o32,
    );
    // PILOT with learned trust, in both forms: one arm a stand-in (fresh, small weight).
    let trusting = || {
        let inner = LinUcbVec::with_priors(ucb, &priors, 4).unwrap();
        let slots = vec![pilot_bandit::ArmTrust::start(0.5); 3];
        let mut p = PriorTrust::new(inner, slots, TrustParams::default()).unwrap();
        p.mark_fresh(ArmId::new(1)).unwrap();
        p
    };
    assert_conforms(trusting, &o32);
    assert_conforms(
        || {
            let inner = LinUcbFixed::<3, 4>::with_priors(ucb, &priors, 4).unwrap();
            let slots = [pilot_bandit::ArmTrust::start(0.5); 3];
            PriorTrust::new(inner, slots, TrustParams::default()).unwrap()
        },
        &o32,
    );
    let ts = LinTs::params().scale(0.5).check().unwrap();
    assert_conforms(
        || LinTsFixed::<3, 4>::with_priors(ts, &priors, 4).unwrap(),
        &o32,
    );
    assert_conforms(|| LinTsVec::new(ts, 5, 4).unwrap(), &o32);
    let eps = EpsilonGreedy::params().epsilon(0.3).check().unwrap();
    assert_conforms(|| EpsilonGreedyFixed::<3, 4>::new(eps, 3, 4).unwrap(), &o32);
    assert_conforms(|| EpsilonGreedyVec::new(eps, 2, 7).unwrap(), &o32);

    let o64 = KitOptions::<f64> {
        reward_range: (-1.0, 2.0),
        ..KitOptions::default()
    };
    let ucb64 = LinUcb::params().reward_range(-1.0, 2.0).check().unwrap();
    assert_conforms(|| LinUcbVec::<f64>::new(ucb64, 4, 3).unwrap(), &o64);
}

#[test]
fn baselines_conform() {
    let o = KitOptions::<f32>::default();
    assert_conforms(|| UniformRandom::<f32>::new(4, 3).unwrap(), &o);
    assert_conforms(|| FixedArm::<f32>::new(ArmId(2), 4, 3).unwrap(), &o);
    // A single dimension and a single arm are legal edge cases.
    assert_conforms(|| FixedArm::<f32>::new(ArmId(0), 1, 1).unwrap(), &o);
}

/// A policy that breaks the contract in a chosen way, to prove the kit notices.
#[derive(Clone)]
struct Broken {
    flaw: Flaw,
    counter: u8,
}

#[derive(Clone, Copy, PartialEq)]
enum Flaw {
    /// Counts every update, including rejected ones, before validating.
    MutatesOnError,
    /// Returns an arm that is not the argmax of its own scores.
    WrongArm,
    /// Accepts any bytes on restore.
    AcceptsAnything,
}

impl Policy<f32> for Broken {
    fn dim(&self) -> usize {
        2
    }
    fn arm_count(&self) -> usize {
        2
    }
    fn select(&mut self, c: &[f32], _: &mut dyn RngCore, s: &mut [ArmScore<f32>]) -> Result<ArmId> {
        pilot_core::check_len("context", c, 2)?;
        pilot_core::check_finite("context", c)?;
        pilot_core::check_len("scores", s, 2)?;
        s[0] = ArmScore::certain(1.0);
        s[1] = ArmScore::certain(f32::from(self.counter % 2));
        Ok(if self.flaw == Flaw::WrongArm {
            ArmId(1)
        } else {
            ArmId(0)
        })
    }
    fn update(&mut self, arm: ArmId, c: &[f32], r: Reward<f32>) -> Result<()> {
        if self.flaw == Flaw::MutatesOnError {
            self.counter = self.counter.wrapping_add(1);
        }
        if arm.index() >= 2 {
            return Err(pilot_core::Error::unknown_arm("update", arm.index(), 2));
        }
        pilot_core::check_len("context", c, 2)?;
        pilot_core::check_finite("context", c)?;
        if !(0.0..=1.0).contains(&r.get()) {
            return Err(pilot_core::Error::out_of_range(
                "reward",
                r.get().into(),
                0.0,
                1.0,
            ));
        }
        if self.flaw != Flaw::MutatesOnError {
            self.counter = self.counter.wrapping_add(1);
        }
        Ok(())
    }
}

impl Snapshot for Broken {
    fn snapshot_len(&self) -> usize {
        1
    }
    fn save(&self, out: &mut [u8]) -> Result<usize> {
        match out.first_mut() {
            Some(b) => {
                *b = self.counter;
                Ok(1)
            }
            None => Err(pilot_core::ErrorKind::BufferTooSmall.into()),
        }
    }
    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        match bytes {
            [b] => {
                self.counter = *b;
                Ok(())
            }
            _ if self.flaw == Flaw::AcceptsAnything => Ok(()),
            _ => Err(pilot_core::ErrorKind::Truncated.into()),
        }
    }
}

#[test]
fn the_kit_reports_each_kind_of_broken_policy() {
    let o = KitOptions::<f32>::default();
    for (flaw, property) in [
        (
            Flaw::MutatesOnError,
            "bad input is an error and changes nothing",
        ),
        (
            Flaw::WrongArm,
            "select returns a valid arm that maximises its own scores",
        ),
        (
            Flaw::AcceptsAnything,
            "corrupt snapshots are rejected and change nothing",
        ),
    ] {
        let report = check_policy(|| Broken { flaw, counter: 0 }, &o);
        let failed: Vec<_> = report.failures().map(|c| c.name).collect();
        assert!(failed.contains(&property), "{report}");
        let text = report.to_string();
        assert!(text.contains("FAIL"), "{text}");
        assert!(text.lines().last().unwrap().ends_with("failed"), "{text}");
    }
}
