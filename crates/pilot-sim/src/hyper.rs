//! Hyperparameters of each policy family and of the online cost policy serving it, with the
//! defaults the tuning harness ([`crate::tune`]) chose on the learning split.
//!
//! One [`Hyper`] per family keeps the comparison fair: every family carries the same fields
//! (the ones it does not read are ignored) and the tuner searches the same kind of grid for
//! each. Policy names map to families: `pilot[arena]` looks up `pilot[arena]`, then `pilot`.

use crate::{Result, SimError};

/// Settings of one policy family and its cost policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hyper {
    /// Exploration weight α of LinUCB / PILOT (score = μ + α·width).
    pub alpha: f32,
    /// Ridge weight λ: for PILOT, how many observations its prior is worth per direction;
    /// for the others, the pull toward zero.
    pub lambda: f32,
    /// LinTS posterior scale v.
    pub ts_scale: f32,
    /// ε-greedy exploration rate.
    pub epsilon: f32,
    /// Pacing's starting price, as a multiple of 1 / (budget per query).
    pub pacing_price: f64,
    /// Pacing's multiplicative step η.
    pub pacing_step: f64,
    /// Threshold policy: both ratio bounds `[L, U]` (from the learning split) are multiplied
    /// by this, so > 1 makes the policy more frugal and < 1 more generous.
    pub threshold_scale: f64,
    /// PILOT's ridge discount γ ∈ (0, 1]: old feedback of an arm fades with a half-life of
    /// ln 2 / (1 − γ) of its updates, the prior is kept (1: no discount).
    pub discount: f32,
    /// PILOT learns a per-LLM prior weight from the feedback (pilot-bandit's `PriorTrust`):
    /// the prior's weight λ shrinks for an LLM whose rewards it predicts worse than the LLM's
    /// own running mean, and a new LLM's stand-in prior starts at the smallest weight.
    pub trust: bool,
    /// PILOT learns one level shared by every LLM (pilot-sim's `SharedLevel`): a shift of the
    /// rewards common to the whole pool (traffic unlike the prior's) moves it, not the arms.
    pub shared_level: bool,
}

impl Hyper {
    /// The values the simulator used before tuning (α = 0.1, λ = 1, v = 0.1, ε = 0.05, pacing
    /// price 0.1 and step 0.05, threshold bounds as measured).
    pub const UNTUNED: Self = Self {
        alpha: 0.1,
        lambda: 1.0,
        ts_scale: 0.1,
        epsilon: 0.05,
        pacing_price: 0.1,
        pacing_step: 0.05,
        threshold_scale: 1.0,
        discount: 1.0,
        trust: false,
        shared_level: false,
    };

    /// Checks every field (NaN fails).
    ///
    /// # Errors
    /// [`SimError::Invalid`] naming the field and its value.
    pub fn check(&self, family: &str) -> Result<()> {
        let bad = |field: &str, v: f64, want: &str| {
            Err(SimError::invalid(format!(
                "{family}: {field} = {v}, expected {want}"
            )))
        };
        if !(self.alpha >= 0.0 && self.alpha.is_finite()) {
            return bad("alpha", f64::from(self.alpha), "a finite value ≥ 0");
        }
        if !(self.lambda > 0.0 && self.lambda.is_finite()) {
            return bad("lambda", f64::from(self.lambda), "a finite value > 0");
        }
        if !(self.ts_scale > 0.0 && self.ts_scale.is_finite()) {
            return bad("ts_scale", f64::from(self.ts_scale), "a finite value > 0");
        }
        if !(0.0..=1.0).contains(&self.epsilon) {
            return bad("epsilon", f64::from(self.epsilon), "a value in [0, 1]");
        }
        if !(self.discount > 0.0 && self.discount <= 1.0) {
            return bad("discount", f64::from(self.discount), "a value in (0, 1]");
        }
        for (field, v) in [
            ("pacing_price", self.pacing_price),
            ("pacing_step", self.pacing_step),
            ("threshold_scale", self.threshold_scale),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(field, v, "a finite value > 0");
            }
        }
        Ok(())
    }

    /// The fields a family reads, for reports (`alpha=0.1 lambda=64 price=0.1 step=0.05`).
    pub fn describe(&self, family: Family, cost: &str) -> String {
        let mut parts = Vec::new();
        match family {
            Family::Pilot | Family::LinUcb => {
                parts.push(format!("alpha={}", self.alpha));
                parts.push(format!("lambda={}", self.lambda));
                if family == Family::Pilot && self.discount < 1.0 {
                    parts.push(format!("gamma={}", self.discount));
                }
                if family == Family::Pilot && self.trust {
                    parts.push("trust".to_owned());
                }
                if family == Family::Pilot && self.shared_level {
                    parts.push("shared-level".to_owned());
                }
            }
            Family::LinTs => {
                parts.push(format!("scale={}", self.ts_scale));
                parts.push(format!("lambda={}", self.lambda));
            }
            Family::EpsilonGreedy => {
                parts.push(format!("epsilon={}", self.epsilon));
                parts.push(format!("lambda={}", self.lambda));
            }
            Family::PriorOnly | Family::Random | Family::KnnFullInfo => {}
        }
        match cost {
            "threshold" => parts.push(format!("threshold_scale={}", self.threshold_scale)),
            // The published threshold policy has no settings.
            "zcl" => {}
            _ => {
                parts.push(format!("price={}", self.pacing_price));
                parts.push(format!("step={}", self.pacing_step));
            }
        }
        parts.join(" ")
    }
}

/// The kinds of routing policy the experiment compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// LinUCB started at a preference prior.
    Pilot,
    /// The prior alone, never updated.
    PriorOnly,
    /// LinUCB from zero.
    LinUcb,
    /// Linear Thompson sampling.
    LinTs,
    /// ε-greedy on ridge estimates.
    EpsilonGreedy,
    /// Uniformly random.
    Random,
    /// Full-information kNN router on the learning split.
    KnnFullInfo,
}

impl Family {
    /// Every family, in report order.
    pub const ALL: [Self; 7] = [
        Self::Pilot,
        Self::PriorOnly,
        Self::LinUcb,
        Self::LinTs,
        Self::EpsilonGreedy,
        Self::Random,
        Self::KnnFullInfo,
    ];

    /// The family of a name (as [`name`](Self::name) writes it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Name in reports (the policy name, before any `[prior]` suffix).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pilot => "pilot",
            Self::PriorOnly => "prior-only",
            Self::LinUcb => "linucb",
            Self::LinTs => "lints",
            Self::EpsilonGreedy => "egreedy",
            Self::Random => "random",
            Self::KnnFullInfo => "knn-full-info",
        }
    }
}

/// Hyperparameters per family (keyed by policy name or family name), with a fallback.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyParams {
    /// Used for a policy with no entry.
    pub fallback: Hyper,
    /// `(policy or family name, settings)`; a later entry for the same name wins.
    pub entries: Vec<(String, Hyper)>,
    /// `Some(side)`: PILOT and the prior alone on the same prior (`pilot[x]`, `prior-only[x]`)
    /// both run with the cost-policy settings (pacing price and step, threshold scale) of
    /// `side` ([`Family::Pilot`] or [`Family::PriorOnly`]), so their comparison isolates
    /// online learning from cost-policy tuning. `None`: each its own tuned settings.
    pub paired: Option<Family>,
}

impl FamilyParams {
    /// Every family at `hyper`.
    pub fn uniform(hyper: Hyper) -> Self {
        Self {
            fallback: hyper,
            entries: Vec::new(),
            paired: None,
        }
    }

    /// The settings the simulator used before tuning: [`Hyper::UNTUNED`] everywhere, PILOT
    /// with λ = 4.
    pub fn untuned() -> Self {
        let mut p = Self::uniform(Hyper::UNTUNED);
        p.set(
            Family::Pilot.name(),
            Hyper {
                lambda: 4.0,
                ..Hyper::UNTUNED
            },
        );
        p
    }

    /// The defaults chosen by `pilot simulate --tune` on RouterBench-3k's learning split
    /// (fit 70 % / validation 30 %, see docs/reproduce.md for the procedure and the grid).
    pub fn tuned() -> Self {
        let base = Hyper::UNTUNED;
        let mut p = Self::uniform(base);
        for (name, h) in TUNED {
            p.set(name, *h);
        }
        p
    }

    /// The settings for policy `name`: its own entry, else its family's (the name before
    /// `[`), else the fallback.
    /// With [`paired`](Self::paired) set, PILOT's and the prior alone's cost-policy fields
    /// come from the named side of their pair.
    pub fn get(&self, name: &str) -> Hyper {
        let own = self.own(name);
        let Some(side) = self.paired else {
            return own;
        };
        let (family, suffix) = name.split_at(name.find('[').unwrap_or(name.len()));
        let pair = [Family::Pilot.name(), Family::PriorOnly.name()];
        if !pair.contains(&family) || family == side.name() || !pair.contains(&side.name()) {
            return own;
        }
        let lender = self.own(&format!("{}{suffix}", side.name()));
        Hyper {
            pacing_price: lender.pacing_price,
            pacing_step: lender.pacing_step,
            threshold_scale: lender.threshold_scale,
            ..own
        }
    }

    /// The entry for `name`, else its family's, else the fallback (no pairing).
    fn own(&self, name: &str) -> Hyper {
        let family = name.split('[').next().unwrap_or(name);
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .or_else(|| self.entries.iter().rev().find(|(n, _)| n == family))
            .map_or(self.fallback, |(_, h)| *h)
    }

    /// Sets the entry of `name`.
    pub fn set(&mut self, name: &str, hyper: Hyper) {
        self.entries.retain(|(n, _)| n != name);
        self.entries.push((name.to_owned(), hyper));
    }

    /// Applies `change` to the fallback and to every entry whose family is one of `families`
    /// (the fallback too when `families` contains the family of no entry).
    pub fn adjust(&mut self, families: &[Family], change: impl Fn(&mut Hyper)) {
        let mut touched: Vec<&'static str> = Vec::new();
        for (name, h) in &mut self.entries {
            let family = name.split('[').next().unwrap_or(name);
            if let Some(f) = families.iter().find(|f| f.name() == family) {
                change(h);
                touched.push(f.name());
            }
        }
        for f in families {
            if !touched.contains(&f.name()) {
                let mut h = self.fallback;
                change(&mut h);
                self.entries.push((f.name().to_owned(), h));
            }
        }
    }

    /// Checks every entry and the fallback.
    ///
    /// # Errors
    /// [`SimError::Invalid`] naming the family and the field.
    pub fn check(&self) -> Result<()> {
        self.fallback.check("fallback")?;
        for (name, h) in &self.entries {
            h.check(name)?;
        }
        Ok(())
    }
}

impl Default for FamilyParams {
    fn default() -> Self {
        Self::tuned()
    }
}

/// The tuned settings (see [`FamilyParams::tuned`]): the output of
/// `pilot simulate --dataset routerbench-3k.jsonl … --arena … --tune --cost-policy
/// pacing,threshold` (tune.csv), fields a family does not read left at [`Hyper::UNTUNED`].
const TUNED: &[(&str, Hyper)] = &[
    (
        "pilot",
        Hyper {
            alpha: 0.05,
            lambda: 64.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.1,
            pacing_step: 0.1,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "prior-only",
        Hyper {
            alpha: 0.1,
            lambda: 1.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.03,
            pacing_step: 0.2,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "pilot[arena]",
        Hyper {
            alpha: 0.1,
            lambda: 16.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.1,
            pacing_step: 0.05,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "prior-only[arena]",
        Hyper {
            alpha: 0.1,
            lambda: 1.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.1,
            pacing_step: 0.2,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "linucb",
        Hyper {
            alpha: 0.1,
            lambda: 0.0625,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.1,
            pacing_step: 0.05,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "lints",
        Hyper {
            alpha: 0.1,
            lambda: 0.015625,
            ts_scale: 0.02,
            epsilon: 0.05,
            pacing_price: 0.03,
            pacing_step: 0.1,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "egreedy",
        Hyper {
            alpha: 0.1,
            lambda: 1.0,
            ts_scale: 0.1,
            epsilon: 0.1,
            pacing_price: 0.03,
            pacing_step: 0.05,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "random",
        Hyper {
            alpha: 0.1,
            lambda: 1.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.01,
            pacing_step: 0.1,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
    (
        "knn-full-info",
        Hyper {
            alpha: 0.1,
            lambda: 1.0,
            ts_scale: 0.1,
            epsilon: 0.05,
            pacing_price: 0.01,
            pacing_step: 0.2,
            threshold_scale: 0.01,
            discount: 1.0,
            trust: false,
            shared_level: false,
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_the_policy_then_the_family_then_the_fallback() {
        let mut p = FamilyParams::uniform(Hyper::UNTUNED);
        let pilot = Hyper {
            lambda: 64.0,
            ..Hyper::UNTUNED
        };
        let arena = Hyper {
            lambda: 8.0,
            ..Hyper::UNTUNED
        };
        p.set("pilot", pilot);
        p.set("pilot[arena]", arena);
        assert_eq!(p.get("pilot[arena]"), arena);
        assert_eq!(p.get("pilot[other]"), pilot);
        assert_eq!(p.get("pilot"), pilot);
        assert_eq!(p.get("linucb"), Hyper::UNTUNED);
        p.adjust(&[Family::Pilot, Family::LinUcb], |h| h.alpha = 0.5);
        assert_eq!(p.get("pilot[arena]").alpha, 0.5);
        assert_eq!(p.get("pilot").alpha, 0.5);
        assert_eq!(p.get("linucb").alpha, 0.5);
        assert_eq!(p.get("lints").alpha, 0.1);
    }

    #[test]
    fn pairing_gives_both_sides_of_a_pair_one_sides_cost_settings() {
        let mut p = FamilyParams::tuned();
        let (pilot, prior) = (p.get("pilot[arena]"), p.get("prior-only[arena]"));
        assert_ne!(
            (pilot.pacing_price, pilot.pacing_step),
            (prior.pacing_price, prior.pacing_step)
        );
        p.paired = Some(Family::Pilot);
        let lent = p.get("prior-only[arena]");
        assert_eq!(
            (lent.pacing_price, lent.pacing_step, lent.threshold_scale),
            (pilot.pacing_price, pilot.pacing_step, pilot.threshold_scale)
        );
        assert_eq!(p.get("pilot[arena]"), pilot);
        // Only the cost-policy fields move; other policies are untouched.
        assert_eq!(
            Hyper {
                pacing_price: prior.pacing_price,
                pacing_step: prior.pacing_step,
                ..lent
            },
            prior
        );
        assert_eq!(p.get("linucb"), FamilyParams::tuned().get("linucb"));
        p.paired = Some(Family::PriorOnly);
        let borrowed = p.get("pilot");
        let lender = FamilyParams::tuned().get("prior-only");
        assert_eq!(
            (borrowed.pacing_price, borrowed.pacing_step),
            (lender.pacing_price, lender.pacing_step)
        );
        assert_eq!(borrowed.lambda, 64.0);
    }

    #[test]
    fn bad_values_are_named() {
        let h = Hyper {
            lambda: f32::NAN,
            ..Hyper::UNTUNED
        };
        let e = h.check("pilot").unwrap_err().to_string();
        assert!(e.contains("pilot") && e.contains("lambda"), "{e}");
        let h = Hyper {
            pacing_step: 0.0,
            ..Hyper::UNTUNED
        };
        assert!(
            h.check("x")
                .unwrap_err()
                .to_string()
                .contains("pacing_step")
        );
    }
}
