//! Checked hyperparameters: builders that only become a usable config through `check()`.
//!
//! In the style of linfa's `ParamGuard`: a `*Params` value collects settings unchecked, and
//! `check()` returns the matching `*Config` or an [`InvalidParameter`](pilot_core::ErrorKind::InvalidParameter)
//! error whose context names the field. Every comparison is written so NaN fails it.

use pilot_core::{Error, Real, Result};

/// Settings shared by every ridge-regression policy (LinUCB, PILOT, LinTS, ε-greedy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RidgeParams<F> {
    lambda: F,
    reward_min: F,
    reward_max: F,
    discount: F,
}

impl<F: Real> Default for RidgeParams<F> {
    fn default() -> Self {
        Self {
            lambda: F::ONE,
            reward_min: F::ZERO,
            reward_max: F::ONE,
            discount: F::ONE,
        }
    }
}

/// Checked [`RidgeParams`]: λ finite and > 0, a finite reward range with min < max, and a
/// discount γ in (0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RidgeConfig<F>(RidgeParams<F>);

impl<F: Real> RidgeParams<F> {
    /// Ridge settings from their four values (λ, reward range, discount), unchecked.
    pub fn new(lambda: F, reward_min: F, reward_max: F, discount: F) -> Self {
        Self {
            lambda,
            reward_min,
            reward_max,
            discount,
        }
    }

    /// Validates every field.
    ///
    /// # Errors
    /// [`InvalidParameter`](pilot_core::ErrorKind::InvalidParameter) naming `lambda`, `reward_range` or
    /// `discount`.
    pub fn check(self) -> Result<RidgeConfig<F>> {
        if !(self.lambda > F::ZERO && self.lambda.is_finite()) {
            return Err(Error::invalid_parameter(
                "lambda (must be finite and > 0)",
                self.lambda.to_f64(),
            ));
        }
        if !self.reward_min.is_finite() {
            return Err(Error::invalid_parameter(
                "reward_range: min (must be finite)",
                self.reward_min.to_f64(),
            ));
        }
        if !(self.reward_max.is_finite() && self.reward_max > self.reward_min) {
            return Err(Error::invalid_parameter(
                "reward_range: max (must be finite and > min)",
                self.reward_max.to_f64(),
            ));
        }
        if !(self.discount > F::ZERO && self.discount <= F::ONE) {
            return Err(Error::invalid_parameter(
                "discount (must be in (0, 1])",
                self.discount.to_f64(),
            ));
        }
        Ok(RidgeConfig(self))
    }
}

impl<F: Real> RidgeConfig<F> {
    /// Ridge strength λ: every arm starts at A = λI (and b = λ·θ_prior for PILOT).
    pub fn lambda(&self) -> F {
        self.0.lambda
    }
    /// The closed range rewards must lie in.
    pub fn reward_range(&self) -> (F, F) {
        (self.0.reward_min, self.0.reward_max)
    }
    /// Forgetting factor γ ∈ (0, 1]; 1 means no forgetting.
    pub fn discount(&self) -> F {
        self.0.discount
    }
    /// The unchecked parameters this config came from.
    pub fn params(&self) -> RidgeParams<F> {
        self.0
    }
}

/// Setters for the shared ridge fields, on every policy's parameter builder.
macro_rules! ridge_setters {
    () => {
        /// Ridge strength λ (> 0): the weight of the prior, or of the pull toward zero without
        /// one. Default 1.
        pub fn lambda(mut self, lambda: F) -> Self {
            self.ridge.lambda = lambda;
            self
        }
        /// The closed range `[min, max]` of valid rewards; others are rejected. Default [0, 1].
        pub fn reward_range(mut self, min: F, max: F) -> Self {
            self.ridge.reward_min = min;
            self.ridge.reward_max = max;
            self
        }
        /// Forgetting factor γ ∈ (0, 1] for drifting traffic (see the crate docs). Default 1.
        pub fn discount(mut self, discount: F) -> Self {
            self.ridge.discount = discount;
            self
        }
        /// The shared ridge settings.
        pub fn ridge(mut self, ridge: RidgeParams<F>) -> Self {
            self.ridge = ridge;
            self
        }
    };
}

/// Declares a policy's parameter builder and checked config around one extra field.
macro_rules! policy_params {
    (
        $(#[$pdoc:meta])* $params:ident, $(#[$cdoc:meta])* $config:ident,
        $field:ident, $default:expr, $fdoc:literal, $check:expr, $rule:literal
    ) => {
        $(#[$pdoc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $params<F> {
            $field: F,
            ridge: RidgeParams<F>,
        }

        impl<F: Real> Default for $params<F> {
            fn default() -> Self {
                Self {
                    $field: F::from_f64($default),
                    ridge: RidgeParams::default(),
                }
            }
        }

        $(#[$cdoc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $config<F> {
            $field: F,
            ridge: RidgeConfig<F>,
        }

        impl<F: Real> $params<F> {
            #[doc = $fdoc]
            pub fn $field(mut self, value: F) -> Self {
                self.$field = value;
                self
            }

            ridge_setters!();

            /// Validates every field.
            ///
            /// # Errors
            /// [`InvalidParameter`](pilot_core::ErrorKind::InvalidParameter) whose context names the field.
            pub fn check(self) -> Result<$config<F>> {
                let check: fn(F) -> bool = $check;
                if !check(self.$field) {
                    return Err(Error::invalid_parameter($rule, self.$field.to_f64()));
                }
                Ok($config {
                    $field: self.$field,
                    ridge: self.ridge.check()?,
                })
            }
        }

        impl<F: Real> $config<F> {
            #[doc = $fdoc]
            pub fn $field(&self) -> F {
                self.$field
            }
            /// The checked ridge settings.
            pub fn ridge(&self) -> &RidgeConfig<F> {
                &self.ridge
            }
            /// The unchecked parameters this config came from.
            pub fn params(&self) -> $params<F> {
                $params {
                    $field: self.$field,
                    ridge: self.ridge.params(),
                }
            }
        }
    };
}

policy_params!(
    /// LinUCB / PILOT hyperparameters, unchecked: `LinUcb::params().alpha(0.5).check()?`.
    LinUcbParams,
    /// Checked LinUCB / PILOT hyperparameters.
    LinUcbConfig,
    alpha,
    1.0,
    "Exploration weight α ≥ 0: the score is μ + α·w. Default 1.",
    |a: F| a >= F::ZERO && a.is_finite(),
    "alpha (must be finite and ≥ 0)"
);

policy_params!(
    /// Linear Thompson sampling hyperparameters, unchecked.
    LinTsParams,
    /// Checked linear Thompson sampling hyperparameters.
    LinTsConfig,
    scale,
    1.0,
    "Posterior scale v ≥ 0: θ ~ N(θ̂, v²A⁻¹); 0 is greedy. Default 1.",
    |v: F| v >= F::ZERO && v.is_finite(),
    "scale (must be finite and ≥ 0)"
);

policy_params!(
    /// ε-greedy hyperparameters, unchecked.
    EpsilonGreedyParams,
    /// Checked ε-greedy hyperparameters.
    EpsilonGreedyConfig,
    epsilon,
    0.1,
    "Exploration probability ε ∈ [0, 1]. Default 0.1.",
    |e: F| e >= F::ZERO && e <= F::ONE,
    "epsilon (must be in [0, 1])"
);

/// Checks that `reward` lies in the configured range.
pub(crate) fn check_reward<F: Real>(ridge: &RidgeConfig<F>, reward: F) -> Result<()> {
    let (min, max) = ridge.reward_range();
    check_reward_range(min, max, reward)
}

/// Checks that `reward` is finite and lies in `[min, max]`.
pub(crate) fn check_reward_range<F: Real>(min: F, max: F, reward: F) -> Result<()> {
    if !reward.is_finite() {
        return Err(Error::non_finite("update: reward", reward.to_f64()));
    }
    if !(reward >= min && reward <= max) {
        return Err(Error::out_of_range(
            "update: reward",
            reward.to_f64(),
            min.to_f64(),
            max.to_f64(),
        ));
    }
    Ok(())
}

/// A reward range for policies without ridge state (the baselines).
pub(crate) fn check_range<F: Real>(min: F, max: F) -> Result<()> {
    RidgeParams {
        reward_min: min,
        reward_max: max,
        ..RidgeParams::default()
    }
    .check()
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pilot_core::ErrorKind;

    #[test]
    fn each_bad_field_is_named() {
        let e = LinUcbParams::<f32>::default()
            .alpha(f32::NAN)
            .check()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert!(e.context().starts_with("alpha"));
        let e = LinUcbParams::<f32>::default()
            .lambda(0.0)
            .check()
            .unwrap_err();
        assert!(e.context().starts_with("lambda"));
        let e = LinTsParams::<f64>::default()
            .reward_range(1.0, 1.0)
            .check()
            .unwrap_err();
        assert!(e.context().starts_with("reward_range"));
        let e = EpsilonGreedyParams::<f32>::default()
            .discount(1.5)
            .check()
            .unwrap_err();
        assert!(e.context().starts_with("discount"));
        let e = EpsilonGreedyParams::<f32>::default()
            .epsilon(-0.1)
            .check()
            .unwrap_err();
        assert!(e.context().starts_with("epsilon"));
        let ok = LinUcbParams::<f32>::default()
            .alpha(0.5)
            .lambda(2.0)
            .reward_range(-1.0, 1.0)
            .discount(0.99)
            .check()
            .unwrap();
        assert_eq!(ok.alpha(), 0.5);
        assert_eq!(ok.ridge().lambda(), 2.0);
        assert_eq!(ok.ridge().reward_range(), (-1.0, 1.0));
        assert_eq!(ok.ridge().discount(), 0.99);
    }
}
