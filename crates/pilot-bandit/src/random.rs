//! Uniform and standard normal draws from a caller's `RngCore`, without the `rand` crate.
//!
//! Every draw consumes a fixed number of RNG words, so a run replays exactly from its seed.

use pilot_core::{Real, RngCore};

/// A uniform draw in `[0, 1)`: 24 random bits for `f32`, 53 for `f64` (every value exact).
pub fn uniform<F: Real>(rng: &mut dyn RngCore) -> F {
    if F::BYTES == 4 {
        F::from_f32((rng.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0))
    } else {
        F::from_f64((rng.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0))
    }
}

/// A uniform index in `0..n` (`n ≥ 1`), by Lemire's multiply-shift on 32 bits; the bias, at most
/// n / 2³², is far below anything a routing run can detect.
pub fn index(rng: &mut dyn RngCore, n: usize) -> usize {
    ((u64::from(rng.next_u32()) * n as u64) >> 32) as usize
}

/// Two independent standard normal draws (Box–Muller, computed in `f64` through libm).
pub fn standard_normal_pair(rng: &mut dyn RngCore) -> (f64, f64) {
    // 1 − u lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - uniform::<f64>(rng);
    let u2 = uniform::<f64>(rng);
    let radius = libm::sqrt(-2.0 * libm::log(u1));
    let angle = 2.0 * core::f64::consts::PI * u2;
    (radius * libm::cos(angle), radius * libm::sin(angle))
}

/// Fills `out` with independent standard normal draws, two per Box–Muller step.
pub fn fill_standard_normal<F: Real>(rng: &mut dyn RngCore, out: &mut [F]) {
    for pair in out.chunks_mut(2) {
        let (a, b) = standard_normal_pair(rng);
        if let Some(first) = pair.first_mut() {
            *first = F::from_f64(a);
        }
        if let Some(second) = pair.get_mut(1) {
            *second = F::from_f64(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use rand_pcg::Pcg64;

    #[test]
    fn normal_draws_have_unit_moments_and_uniforms_stay_in_range() {
        let mut rng = Pcg64::seed_from_u64(7);
        let mut z = [0.0f64; 20_000];
        fill_standard_normal(&mut rng, &mut z);
        let n = z.len() as f64;
        let mean = z.iter().sum::<f64>() / n;
        let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        for _ in 0..1000 {
            let u: f32 = uniform(&mut rng);
            assert!((0.0..1.0).contains(&u));
            assert!(index(&mut rng, 3) < 3);
        }
    }
}
