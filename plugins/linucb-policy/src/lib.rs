//! pilot-bandit's LinUCB as a policy plugin: the native code, unchanged, behind a constructor
//! from a configuration string. Its decisions and snapshots equal the native policy's.
//!
//! Configuration (`key=value`, spaces or commas between): `d` (context dimension, required),
//! `k` (arms, required), and optionally `alpha`, `lambda`, `reward_min`, `reward_max`,
//! `discount`; omitted ones keep `LinUcb::params()`'s defaults.
//!
//! PILOT: `prior.<arm>=<v1>;<v2>;…;<vd>` starts arm `<arm>` (0-based) at θ̂ = that vector with
//! A = λI, exactly as `LinUcbVec::with_priors` does natively; arms without one start at zero.

use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_plugin_sdk::{
    ArmId, ArmScore, Error, ErrorKind, Policy, PolicyPlugin, Result, Reward, RngCore, Snapshot,
    parse_config, parse_f32, parse_usize,
};

/// The native `LinUcbVec<f32>`.
pub struct LinUcbPlugin(LinUcbVec<f32>);

impl Policy<f32> for LinUcbPlugin {
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn arm_count(&self) -> usize {
        self.0.arm_count()
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        self.0.select(context, rng, scores)
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> Result<()> {
        self.0.update(arm, context, reward)
    }
}

impl Snapshot for LinUcbPlugin {
    fn snapshot_len(&self) -> usize {
        self.0.snapshot_len()
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        self.0.save(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        self.0.restore(bytes)
    }
}

impl PolicyPlugin for LinUcbPlugin {
    fn create(config: &str) -> Result<Self> {
        let mut params = LinUcb::params();
        let (mut dim, mut arms) = (None, None);
        let (mut reward_min, mut reward_max) = (None, None);
        let mut priors: Vec<(usize, Vec<f32>)> = Vec::new();
        parse_config(config, |key, value| {
            if let Some(arm) = key.strip_prefix("prior.") {
                let arm = parse_usize("linucb config: prior.<arm>: arm index", arm)?;
                if priors.iter().any(|(a, _)| *a == arm) {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        "linucb config: prior.<arm> given twice for one arm",
                    ));
                }
                let vector = value
                    .split(';')
                    .map(|v| parse_f32("linucb config: prior.<arm>: a value", v))
                    .collect::<Result<Vec<f32>>>()?;
                priors.push((arm, vector));
                return Ok(());
            }
            match key {
                "d" => dim = Some(parse_usize("linucb config: d", value)?),
                "k" => arms = Some(parse_usize("linucb config: k", value)?),
                "alpha" => params = params.alpha(parse_f32("linucb config: alpha", value)?),
                "lambda" => params = params.lambda(parse_f32("linucb config: lambda", value)?),
                "discount" => {
                    params = params.discount(parse_f32("linucb config: discount", value)?)
                }
                "reward_min" => reward_min = Some(parse_f32("linucb config: reward_min", value)?),
                "reward_max" => reward_max = Some(parse_f32("linucb config: reward_max", value)?),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidParameter,
                        "linucb config: unknown key (d, k, alpha, lambda, discount, reward_min, reward_max, prior.<arm>)",
                    ));
                }
            }
            Ok(())
        })?;
        if reward_min.is_some() || reward_max.is_some() {
            params = params.reward_range(reward_min.unwrap_or(0.0), reward_max.unwrap_or(1.0));
        }
        let missing = |what| Error::new(ErrorKind::InvalidParameter, what);
        let dim = dim.ok_or(missing("linucb config: d is required"))?;
        let arms = arms.ok_or(missing("linucb config: k is required"))?;
        let params = params.check()?;
        if priors.is_empty() {
            return Ok(Self(LinUcbVec::new(params, arms, dim)?));
        }
        let mut starts: Vec<Option<&[f32]>> = vec![None; arms];
        for (arm, vector) in &priors {
            let slot = starts.get_mut(*arm).ok_or(Error::new(
                ErrorKind::InvalidParameter,
                "linucb config: prior.<arm>: arm index is not below k",
            ))?;
            *slot = Some(vector.as_slice());
        }
        // with_priors checks each vector's length against d and that its values are finite.
        Ok(Self(LinUcbVec::with_priors(params, &starts, dim)?))
    }
}

pilot_plugin_sdk::export_policy!(LinUcbPlugin);
