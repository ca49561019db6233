//! `{{name}}`: a policy plugin for PILOT router, made by `cargo xtask new-plugin`. It scores each
//! arm by the mean reward it earned plus an exploration bonus `bonus / √(1 + plays)` (UCB1's
//! shape, context-free). Replace the learning with your own; keep the checks, which are what
//! `pilot plugin check` (pilot-bandit's conformance kit) tests.
//!
//! Build: `cargo build --release` in this directory (`.cargo/config.toml` picks the target and
//! the component linker); the component is `target/wasm32-unknown-unknown/release/{{crate}}.wasm`.
//! Check: `pilot plugin check <that file> --plugin-config "d=16 k=11"`.
//!
//! What the host and the kit expect (docs/plugins.md, "What the conformance kit checks"):
//! - `create` reads the configuration the host passes. `pilot simulate --policy-plugin` passes
//!   `--plugin-config`, or without it the LinUCB plugin's keys (`d k alpha lambda reward_min
//!   reward_max`); `d` is the context dimension and `k` the pool, arm `i` being the dataset's
//!   `i`-th LLM (the order of the first line's `quality` keys).
//! - `select` writes one finite score per arm with a width ≥ 0 and returns the highest score,
//!   ties to the lowest index; a context of the wrong length or with NaN/∞ is an error.
//! - `update` refuses an unknown arm, a bad context and a reward outside [0, 1], and then
//!   changes nothing.
//! - `save` / `restore` go through `pilot_core::envelope` (magic, version, length, CRC-32), so
//!   truncated or corrupted bytes are refused; `restore` also refuses another shape and leaves
//!   the state as it was on any error.
//! - Costs: `pilot simulate` passes none to a policy (the `Policy` trait has no costs); its
//!   cost policy (pacing, threshold) turns the scores into a decision under the budget.

use pilot_plugin_sdk::pilot_core::envelope::{self, HEADER_LEN};
use pilot_plugin_sdk::pilot_core::{Detail, argmax_score, check_finite, check_len};
use pilot_plugin_sdk::{
    ArmId, ArmScore, Error, ErrorKind, Policy, PolicyPlugin, Result, Reward, RngCore, Snapshot,
    parse_config, parse_f32, parse_usize,
};

/// What the snapshot bytes are: change it when you change the policy.
const MAGIC: [u8; 4] = *b"TMPL";
/// The snapshot format version: bump it when the payload changes.
const VERSION: u16 = 1;
/// The rewards `update` accepts.
const REWARD_RANGE: (f32, f32) = (0.0, 1.0);

/// Per arm: how often it was played and the mean reward it earned.
pub struct MeanPolicy {
    dim: usize,
    bonus: f32,
    plays: Vec<u32>,
    means: Vec<f32>,
}

impl MeanPolicy {
    fn check_context(&self, context: &[f32]) -> Result<()> {
        check_len("context", context, self.dim)?;
        check_finite("context", context)
    }

    /// Payload bytes: arm count, dimension, bonus, then plays and means per arm.
    fn payload_len(&self) -> usize {
        12 + 8 * self.plays.len()
    }
}

impl Policy<f32> for MeanPolicy {
    fn dim(&self) -> usize {
        self.dim
    }

    fn arm_count(&self) -> usize {
        self.plays.len()
    }

    fn select(
        &mut self,
        context: &[f32],
        _rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        self.check_context(context)?;
        check_len("select: scores", scores, self.plays.len())?;
        for ((out, &mean), &plays) in scores.iter_mut().zip(&self.means).zip(&self.plays) {
            let width = self.bonus / (1.0 + plays as f32).sqrt();
            *out = ArmScore {
                estimate: mean,
                width,
                score: mean + width,
            };
        }
        argmax_score(scores).ok_or(Error::new(ErrorKind::NonFinite, "select: no finite score"))
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> Result<()> {
        let k = self.plays.len();
        if arm.index() >= k {
            return Err(Error::unknown_arm("update: arm", arm.index(), k));
        }
        self.check_context(context)?;
        let r = reward.get();
        let (min, max) = REWARD_RANGE;
        if !(min..=max).contains(&r) {
            return Err(Error::out_of_range(
                "update: reward",
                f64::from(r),
                f64::from(min),
                f64::from(max),
            ));
        }
        let i = arm.index();
        self.plays[i] = self.plays[i].saturating_add(1);
        self.means[i] += (r - self.means[i]) / self.plays[i] as f32;
        Ok(())
    }
}

impl Snapshot for MeanPolicy {
    fn snapshot_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let total = self.snapshot_len();
        if out.len() < total {
            return Err(Error::new(ErrorKind::BufferTooSmall, "save").with_detail(
                Detail::Mismatch {
                    expected: total,
                    found: out.len(),
                },
            ));
        }
        let mut payload = Vec::with_capacity(self.payload_len());
        payload.extend_from_slice(&(self.plays.len() as u32).to_le_bytes());
        payload.extend_from_slice(&(self.dim as u32).to_le_bytes());
        payload.extend_from_slice(&self.bonus.to_le_bytes());
        for (&plays, &mean) in self.plays.iter().zip(&self.means) {
            payload.extend_from_slice(&plays.to_le_bytes());
            payload.extend_from_slice(&mean.to_le_bytes());
        }
        out[HEADER_LEN..total].copy_from_slice(&payload);
        envelope::seal(out, MAGIC, VERSION, payload.len())
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        // The envelope refuses truncated, corrupted, foreign and other-version bytes.
        let payload = envelope::open(bytes, MAGIC, VERSION)?;
        let word = |i: usize| -> Result<[u8; 4]> {
            payload
                .get(4 * i..4 * i + 4)
                .and_then(|w| w.try_into().ok())
                .ok_or(Error::new(ErrorKind::Truncated, "snapshot payload"))
        };
        let k = u32::from_le_bytes(word(0)?) as usize;
        let dim = u32::from_le_bytes(word(1)?) as usize;
        if dim != self.dim {
            return Err(Error::dimension("snapshot: dimension", self.dim, dim));
        }
        // A restore never changes the pool's size.
        if k != self.plays.len() {
            return Err(Error::dimension("snapshot: arm count", self.plays.len(), k));
        }
        if payload.len() != self.payload_len() {
            return Err(Error::new(ErrorKind::Corrupt, "snapshot: payload length"));
        }
        let bonus = f32::from_le_bytes(word(2)?);
        if !(bonus.is_finite() && bonus >= 0.0) {
            return Err(Error::new(ErrorKind::Corrupt, "snapshot: bonus"));
        }
        let mut plays = Vec::with_capacity(k);
        let mut means = Vec::with_capacity(k);
        for arm in 0..k {
            plays.push(u32::from_le_bytes(word(3 + 2 * arm)?));
            let mean = f32::from_le_bytes(word(4 + 2 * arm)?);
            if !(REWARD_RANGE.0..=REWARD_RANGE.1).contains(&mean) {
                return Err(Error::new(ErrorKind::Corrupt, "snapshot: mean reward"));
            }
            means.push(mean);
        }
        // Everything checked: only now replace the state.
        self.bonus = bonus;
        self.plays = plays;
        self.means = means;
        Ok(())
    }
}

impl PolicyPlugin for MeanPolicy {
    fn create(config: &str) -> Result<Self> {
        let (mut dim, mut arms, mut bonus) = (None, None, 0.5f32);
        parse_config(config, |key, value| {
            match key {
                "d" => dim = Some(parse_usize("config: d", value)?),
                "k" => arms = Some(parse_usize("config: k", value)?),
                "bonus" => bonus = parse_f32("config: bonus", value)?,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        "config: unknown key (this plugin takes d, k and bonus; pass them with \
                         --plugin-config)",
                    ));
                }
            }
            Ok(())
        })?;
        let dim = dim.filter(|&d| d > 0).ok_or(Error::new(
            ErrorKind::InvalidParameter,
            "config: d (the context dimension, ≥ 1) is required",
        ))?;
        let arms = arms.filter(|&k| k > 0).ok_or(Error::new(
            ErrorKind::InvalidParameter,
            "config: k (the number of arms, ≥ 1) is required",
        ))?;
        if bonus < 0.0 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "config: bonus must be ≥ 0",
            ));
        }
        Ok(Self {
            dim,
            bonus,
            plays: vec![0; arms],
            means: vec![0.0; arms],
        })
    }
}

pilot_plugin_sdk::export_policy!(MeanPolicy);
