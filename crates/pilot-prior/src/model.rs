//! A fitted prior: the projection W (with its centring offset) from the base embedding space to
//! the shared space, and one calibrated vector per LLM. It owns the map from a base vector to the
//! policy's context, so every policy that uses the prior sees the same context.

use pilot_core::{Error, ErrorKind};
use serde::{Deserialize, Serialize};

/// One LLM's vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmVector {
    /// The LLM's name in the routing pool.
    pub name: String,
    /// The calibrated vector θ'_a (`d + 1` values): `⟨context, θ'_a⟩` is the expected quality
    /// in [0, 1]. PILOT uses it as the prior mean of its ridge regression.
    pub theta: Vec<f32>,
    /// The Bradley–Terry vector θ_a before calibration (`d + 1` values, the last one the bias).
    pub raw: Vec<f32>,
    /// How many preference pairs involved this LLM.
    pub pairs: usize,
}

/// The affine calibration from Bradley–Terry affinity to expected quality:
/// `quality ≈ scale · ⟨context, θ_a⟩ + intercept_a`, least squares on the learning data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The shared scale `s ≥ 0` (shared so that the calibration keeps the learned ranking
    /// within each query).
    pub scale: f64,
    /// Per-LLM intercepts `c_a`, in the order of [`Prior::llms`].
    pub intercepts: Vec<f64>,
    /// What the quality target was.
    pub target: String,
    /// Root-mean-square error of the calibrated prediction on the learning data.
    pub rmse: f64,
}

/// A preference prior.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    pub(crate) embedder_id: String,
    pub(crate) d_in: usize,
    pub(crate) d: usize,
    /// `d × d_in`, row-major.
    pub(crate) w: Vec<f32>,
    /// `d` values added after the product: `z = W·x + offset` (the PCA centring, refined).
    pub(crate) offset: Vec<f32>,
    pub(crate) llms: Vec<LlmVector>,
    pub(crate) calibration: Calibration,
    pub(crate) missing: Vec<String>,
    pub(crate) source: String,
    pub(crate) seed: u64,
}

impl Prior {
    /// Assembles a prior, checking every dimension and value.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for inconsistent sizes,
    /// [`NonFinite`](ErrorKind::NonFinite) for NaN/∞, [`Empty`](ErrorKind::Empty) for
    /// `d == 0` or `d_in == 0`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        embedder_id: String,
        d_in: usize,
        d: usize,
        w: Vec<f32>,
        offset: Vec<f32>,
        llms: Vec<LlmVector>,
        calibration: Calibration,
        missing: Vec<String>,
        source: String,
        seed: u64,
    ) -> Result<Self, Error> {
        let p = Self {
            embedder_id,
            d_in,
            d,
            w,
            offset,
            llms,
            calibration,
            missing,
            source,
            seed,
        };
        p.validate()?;
        Ok(p)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.d == 0 {
            return Err(Error::new(ErrorKind::Empty, "prior: shared dimension d"));
        }
        if self.d_in == 0 {
            return Err(Error::new(ErrorKind::Empty, "prior: input dimension d_in"));
        }
        let cells = self.d.saturating_mul(self.d_in);
        if self.w.len() != cells {
            return Err(Error::dimension("prior: W (d × d_in)", cells, self.w.len()));
        }
        if self.offset.len() != self.d {
            return Err(Error::dimension(
                "prior: offset (d)",
                self.d,
                self.offset.len(),
            ));
        }
        check_all_finite("prior: W", &self.w)?;
        check_all_finite("prior: offset", &self.offset)?;
        for l in &self.llms {
            if l.theta.len() != self.d + 1 {
                return Err(Error::dimension(
                    "prior: θ' (d + 1)",
                    self.d + 1,
                    l.theta.len(),
                ));
            }
            if l.raw.len() != self.d + 1 {
                return Err(Error::dimension(
                    "prior: θ (d + 1)",
                    self.d + 1,
                    l.raw.len(),
                ));
            }
            check_all_finite("prior: θ'", &l.theta)?;
            check_all_finite("prior: θ", &l.raw)?;
        }
        if self.calibration.intercepts.len() != self.llms.len() {
            return Err(Error::dimension(
                "prior: calibration intercepts",
                self.llms.len(),
                self.calibration.intercepts.len(),
            ));
        }
        if !self.calibration.scale.is_finite() {
            return Err(Error::non_finite(
                "prior: calibration scale",
                self.calibration.scale,
            ));
        }
        // A decoded file must not smuggle NaN/∞ into the calibration either.
        if let Some(&c) = self.calibration.intercepts.iter().find(|c| !c.is_finite()) {
            return Err(Error::non_finite("prior: calibration intercept", c));
        }
        if !self.calibration.rmse.is_finite() {
            return Err(Error::non_finite(
                "prior: calibration rmse",
                self.calibration.rmse,
            ));
        }
        Ok(())
    }

    /// The base embedder's id (`"all-MiniLM-L6-v2"` for the shared MiniLM files).
    pub fn embedder_id(&self) -> &str {
        &self.embedder_id
    }

    /// Dimension of the base vectors.
    pub fn d_in(&self) -> usize {
        self.d_in
    }

    /// Dimension of the shared space.
    pub fn d(&self) -> usize {
        self.d
    }

    /// Dimension of the policy context: `d + 1` (ẑ and a constant 1 that carries the bias).
    pub fn context_dim(&self) -> usize {
        self.d + 1
    }

    /// The projection `W`, `d × d_in` row-major.
    pub fn projection(&self) -> &[f32] {
        &self.w
    }

    /// The offset added after `W·x`.
    pub fn offset(&self) -> &[f32] {
        &self.offset
    }

    /// The LLMs that have a prior vector.
    pub fn llms(&self) -> &[LlmVector] {
        &self.llms
    }

    /// The calibration.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Pool LLMs that had no preference data and so have no prior vector.
    pub fn missing(&self) -> &[String] {
        &self.missing
    }

    /// What the prior was learned from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The seed it was fitted with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The calibrated vector θ'_a of an LLM, or `None` when it has no prior (start it at zero).
    pub fn theta(&self, name: &str) -> Option<&[f32]> {
        self.llms
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.theta.as_slice())
    }

    /// Writes the policy context for base vector `x` into `out`: `[normalize(W·x + offset), 1]`.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `x.len() != d_in` or
    /// `out.len() != d + 1`, [`NonFinite`](ErrorKind::NonFinite) for NaN/∞ in `x`,
    /// [`ZeroVector`](ErrorKind::ZeroVector) when `W·x + offset` is zero. `out` is unspecified
    /// on error.
    pub fn context(&self, x: &[f32], out: &mut [f32]) -> Result<(), Error> {
        self.projection_map()?.context(x, out)
    }

    /// The projection as the core value the router, the simulator and the firmware use.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) or
    /// [`NonFinite`](ErrorKind::NonFinite) for a prior whose matrix does not match its
    /// dimensions (never for one that loaded or was fitted).
    pub fn projection_map(&self) -> Result<pilot_embed::Projection<&[f32]>, Error> {
        pilot_embed::Projection::new(self.w.as_slice(), self.offset.as_slice(), self.d_in)
    }

    /// The calibrated prediction `⟨context, θ'_a⟩` for a context from [`context`](Self::context),
    /// or `None` when the LLM has no prior.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for a context of the wrong length.
    pub fn predict(&self, name: &str, context: &[f32]) -> Result<Option<f32>, Error> {
        pilot_core::check_len("Prior::predict: context (d + 1)", context, self.d + 1)?;
        Ok(match self.theta(name) {
            Some(t) => Some(pilot_embed::linalg::dot(t, context)?),
            None => None,
        })
    }

    /// Keeps only the LLMs of `pool` (renaming nothing) and records the pool LLMs without a
    /// vector as missing: a prior learned on a wider set of models is saved for one pool.
    pub fn restrict_to(&mut self, pool: &[String]) {
        let mut llms = Vec::new();
        let mut intercepts = Vec::new();
        for (l, c) in self.llms.iter().zip(&self.calibration.intercepts) {
            if pool.contains(&l.name) {
                llms.push(l.clone());
                intercepts.push(*c);
            }
        }
        self.missing = pool
            .iter()
            .filter(|p| !llms.iter().any(|l: &LlmVector| &l.name == *p))
            .cloned()
            .collect();
        self.llms = llms;
        self.calibration.intercepts = intercepts;
    }
}

fn check_all_finite(context: &'static str, v: &[f32]) -> Result<(), Error> {
    match v.iter().find(|x| !x.is_finite()) {
        Some(x) => Err(Error::non_finite(context, f64::from(*x))),
        None => Ok(()),
    }
}
