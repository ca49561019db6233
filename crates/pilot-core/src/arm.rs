//! Arms (the LLMs of a pool) and the per-arm explanation of a decision.

use crate::Real;

/// The position of an arm (an LLM) in a pool, `0..K`.
///
/// A plain index: pools that add or remove arms at run time document how indices move.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArmId(pub u32);

impl ArmId {
    /// The arm at `index`.
    ///
    /// Pools never reach `u32::MAX` arms; larger indices saturate, which the pool then
    /// rejects as an unknown arm.
    pub const fn new(index: usize) -> Self {
        if index > u32::MAX as usize {
            Self(u32::MAX)
        } else {
            Self(index as u32)
        }
    }

    /// The index of this arm.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl core::fmt::Display for ArmId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "arm {}", self.0)
    }
}

/// How a policy sees one arm for one context: every decision explains itself.
///
/// `estimate` is the predicted reward (μ = θ̂·x for the linear policies), `width` the
/// uncertainty (√(xᵀA⁻¹x) for LinUCB; zero for policies without one) and `score` what the
/// policy ranks by (μ + α·w for LinUCB, a posterior sample for Thompson sampling).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ArmScore<F = f32> {
    /// Predicted reward.
    pub estimate: F,
    /// Uncertainty of the prediction (≥ 0).
    pub width: F,
    /// The value the policy ranks arms by.
    pub score: F,
}

impl<F: Real> ArmScore<F> {
    /// A score with no uncertainty: estimate = score, width = 0.
    pub fn certain(estimate: F) -> Self {
        Self {
            estimate,
            width: F::ZERO,
            score: estimate,
        }
    }
}

/// The arm with the highest score; ties go to the lowest index, NaN scores never win.
///
/// Returns `None` for an empty slice or when every score is NaN.
pub fn argmax_score<F: Real>(scores: &[ArmScore<F>]) -> Option<ArmId> {
    let mut best: Option<(usize, F)> = None;
    for (i, s) in scores.iter().enumerate() {
        // `s.score == s.score` is false for NaN only.
        #[allow(clippy::eq_op)]
        let is_number = s.score == s.score;
        if !is_number {
            continue;
        }
        match best {
            Some((_, b)) if !(s.score > b) => {}
            _ => best = Some((i, s.score)),
        }
    }
    best.map(|(i, _)| ArmId::new(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f32) -> ArmScore<f32> {
        ArmScore {
            estimate: score,
            width: 0.0,
            score,
        }
    }

    #[test]
    fn ties_go_to_lowest_index_and_nan_never_wins() {
        assert_eq!(argmax_score(&[s(1.0), s(2.0), s(2.0)]), Some(ArmId(1)));
        assert_eq!(argmax_score(&[s(f32::NAN), s(-1.0)]), Some(ArmId(1)));
        assert_eq!(argmax_score::<f32>(&[]), None);
        assert_eq!(argmax_score(&[s(f32::NAN)]), None);
    }
}
