//! The calibration: one shared scale s ≥ 0 and an intercept per LLM so that
//! `s·⟨c, θ_a⟩ + c_a` is the expected quality in [0, 1], least squares on the learning queries.
//! A shared scale keeps, on every query, the order the Bradley–Terry vectors learned; the
//! intercepts put each LLM's average at its observed average.

use crate::model::Calibration;

/// Observations: `(affinity rows, quality)` per LLM.
pub(crate) struct Observations {
    /// Per LLM, `(affinity, quality)` pairs.
    pub per_llm: Vec<Vec<(f64, f64)>>,
}

pub(crate) fn fit(obs: &Observations, target: String) -> Calibration {
    let means: Vec<Option<(f64, f64)>> = obs
        .per_llm
        .iter()
        .map(|o| {
            (!o.is_empty()).then(|| {
                let n = o.len() as f64;
                (
                    o.iter().map(|p| p.0).sum::<f64>() / n,
                    o.iter().map(|p| p.1).sum::<f64>() / n,
                )
            })
        })
        .collect();
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (o, m) in obs.per_llm.iter().zip(&means) {
        if let Some((ma, mq)) = m {
            for (a, q) in o {
                sxy += (a - ma) * (q - mq);
                sxx += (a - ma) * (a - ma);
            }
        }
    }
    // A negative or undefined slope means the affinities carry no usable signal: fall back to
    // per-LLM averages rather than invert the learned order.
    let scale = if sxx > 1e-12 && sxy > 0.0 {
        sxy / sxx
    } else {
        0.0
    };
    let all: Vec<f64> = obs.per_llm.iter().flatten().map(|p| p.1).collect();
    let global = if all.is_empty() {
        0.5
    } else {
        all.iter().sum::<f64>() / all.len() as f64
    };
    let intercepts: Vec<f64> = means
        .iter()
        .map(|m| match m {
            Some((ma, mq)) => mq - scale * ma,
            None => global,
        })
        .collect();
    let (mut se, mut n) = (0.0, 0usize);
    for (o, c) in obs.per_llm.iter().zip(&intercepts) {
        for (a, q) in o {
            let r = scale * a + c - q;
            se += r * r;
            n += 1;
        }
    }
    Calibration {
        scale,
        intercepts,
        target,
        rmse: if n > 0 {
            (se / n as f64).sqrt()
        } else {
            f64::NAN
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_affine_map_and_refuses_a_negative_slope() {
        let obs = Observations {
            per_llm: vec![
                vec![(0.0, 0.1), (1.0, 0.3), (2.0, 0.5)],
                vec![(0.0, 0.6), (1.0, 0.8)],
                vec![],
            ],
        };
        let c = fit(&obs, "t".into());
        assert!((c.scale - 0.2).abs() < 1e-12);
        assert!((c.intercepts[0] - 0.1).abs() < 1e-12);
        assert!((c.intercepts[1] - 0.6).abs() < 1e-12);
        assert!(c.rmse < 1e-12);
        let flipped = Observations {
            per_llm: vec![vec![(0.0, 1.0), (1.0, 0.0)]],
        };
        let c = fit(&flipped, "t".into());
        assert_eq!(c.scale, 0.0);
        assert!((c.intercepts[0] - 0.5).abs() < 1e-12);
    }
}
