//! The fit's hyperparameters, checked before any work: a bad value is an error naming it.

use pilot_core::ErrorKind;

use crate::error::{PriorError, Result};

/// Hyperparameters of [`fit`](crate::fit). `Default` gives the values used for the reported
/// figures.
#[derive(Clone, Debug, PartialEq)]
pub struct FitParams {
    /// Shared-space dimension d (the policy context has d + 1).
    pub dim: usize,
    /// Seed of every random choice (validation split, contrastive partners).
    pub seed: u64,
    /// The id of the embedder the base vectors come from, saved in the prior.
    pub embedder_id: String,
    /// Epochs of the contrastive refinement of W (0 keeps the PCA projection).
    pub contrastive_epochs: usize,
    /// Random partners per query and contrastive epoch.
    pub contrastive_partners: usize,
    /// Adam step size of the contrastive phase.
    pub contrastive_lr: f64,
    /// Strength of the pull of W back to its PCA initialisation (keeps the geometry of the base
    /// space where the preferences say nothing).
    pub contrastive_anchor: f64,
    /// Maximum Bradley–Terry epochs (full batch).
    pub bt_max_epochs: usize,
    /// Adam step size of the Bradley–Terry phase.
    pub bt_lr: f64,
    /// L2 penalty on the LLM vectors.
    pub l2: f64,
    /// Stop after this many epochs without a better held-out loss.
    pub patience: usize,
    /// Fraction of the learning queries held out for early stopping (0 disables it).
    pub validation_fraction: f64,
}

impl Default for FitParams {
    fn default() -> Self {
        Self {
            dim: 32,
            seed: 0,
            embedder_id: pilot_data::MINILM_ID.to_string(),
            contrastive_epochs: 40,
            contrastive_partners: 8,
            contrastive_lr: 2e-3,
            contrastive_anchor: 1e-2,
            bt_max_epochs: 600,
            bt_lr: 0.03,
            l2: 1e-4,
            patience: 30,
            validation_fraction: 0.15,
        }
    }
}

impl FitParams {
    /// Returns the parameters if every one is valid.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) naming the field and its value.
    pub fn check(&self) -> Result<&Self> {
        let bad = |field: &str, value: String, want: &str| {
            Err(PriorError::new(
                ErrorKind::InvalidParameter,
                format!("fit parameter `{field}`: expected {want}, found {value}"),
            ))
        };
        if self.dim == 0 {
            return bad("dim", "0".into(), "at least 1");
        }
        if self.embedder_id.is_empty() {
            return bad("embedder_id", "an empty string".into(), "a non-empty id");
        }
        if self.contrastive_epochs > 0 && self.contrastive_partners == 0 {
            return bad("contrastive_partners", "0".into(), "at least 1");
        }
        for (field, v) in [
            ("contrastive_lr", self.contrastive_lr),
            ("bt_lr", self.bt_lr),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return bad(field, v.to_string(), "a finite number > 0");
            }
        }
        for (field, v) in [
            ("contrastive_anchor", self.contrastive_anchor),
            ("l2", self.l2),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(field, v.to_string(), "a finite number ≥ 0");
            }
        }
        if self.bt_max_epochs == 0 {
            return bad("bt_max_epochs", "0".into(), "at least 1");
        }
        if !(0.0..0.9).contains(&self.validation_fraction) {
            return bad(
                "validation_fraction",
                self.validation_fraction.to_string(),
                "a value in [0, 0.9)",
            );
        }
        Ok(self)
    }
}
