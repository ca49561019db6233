//! The fuzz oracle of plugin outputs: arbitrary bytes decode into what a plugin could return
//! (a declared shape, an embedding, a selection, a snapshot) and go through [`validate`]; the
//! oracle states independently what is valid and checks that exactly that is accepted, and that
//! anything else is a `PluginOutput` error naming a real fault (or `BufferTooSmall` for a
//! snapshot, with the caller's buffer untouched).
//!
//! Input layout: byte 0 picks the case (mod 4), byte 1 the bound
//! ([`BOUNDS`]), then the case's fields. A value takes 1 byte (a tag) plus its payload, so
//! small finite values, NaN, ±∞, values near the bound and raw bit patterns are all common.

use pilot_core::{ArmScore, ErrorKind};

use crate::PluginError;
use crate::validate;

/// Output bounds the cases run under (`Limits::output_bound` values: the default first).
pub const BOUNDS: [f32; 4] = [1e6, 1.0, 1e-3, f32::MAX];

/// Reads the fuzz input front to back; missing bytes read as zero.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn rest(&self) -> &[u8] {
        self.data.get(self.at..).unwrap_or(&[])
    }

    /// One value: tag 0–3 a small value (byte / 16, signed), 4 NaN, 5 ±∞, 6 a multiple of the
    /// bound near it (0.5, 1, 1 + ε, 2 times), 7 the raw bits of the next four bytes.
    fn value(&mut self, bound: f32) -> f32 {
        let tag = self.u8() % 8;
        match tag {
            0..=3 => f32::from(self.u8() as i8) / 16.0,
            4 => f32::NAN,
            5 => {
                if self.u8() & 1 == 0 {
                    f32::INFINITY
                } else {
                    f32::NEG_INFINITY
                }
            }
            6 => {
                let b = self.u8();
                let factor = [0.5, 1.0, 1.000_001, 2.0][usize::from(b % 4)];
                let sign = if b & 4 == 0 { 1.0 } else { -1.0 };
                sign * bound * factor
            }
            _ => f32::from_bits(self.u32()),
        }
    }
}

/// Runs one decoded plugin output through the host's validation and checks the verdict.
///
/// # Errors
/// What the validation got wrong: a valid output rejected, an invalid one accepted, another
/// error kind, or a message that names no fault the output has.
pub fn check_plugin_outputs(data: &[u8]) -> Result<(), String> {
    let mut input = Bytes { data, at: 0 };
    let case = input.u8() % 4;
    let bound = BOUNDS[usize::from(input.u8() % 4)];
    match case {
        0 => check_shapes(&mut input),
        1 => check_embedding(&mut input, bound),
        2 => check_selection(&mut input, bound),
        _ => check_snapshot(&mut input),
    }
}

/// The size of a declared dimension: mostly small, sometimes any `u32`.
fn declared(input: &mut Bytes<'_>) -> usize {
    let b = input.u8();
    if b < 200 {
        usize::from(b % 20)
    } else {
        input.u32() as usize
    }
}

fn expect_output_error(
    what: &str,
    result: Result<(), PluginError>,
    valid: bool,
    faults: &[String],
) -> Result<(), String> {
    match (result, valid) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => Err(format!("{what}: accepted, but it has {faults:?}")),
        (Err(e), true) => Err(format!("{what}: valid, but rejected: {e}")),
        (Err(e), false) => {
            if e.kind() != ErrorKind::PluginOutput {
                return Err(format!("{what}: error of kind {:?}: {e}", e.kind()));
            }
            let message = e.to_string();
            if faults.iter().any(|f| message.contains(f.as_str())) {
                Ok(())
            } else {
                Err(format!("{what}: \"{message}\" names none of {faults:?}"))
            }
        }
    }
}

fn check_shapes(input: &mut Bytes<'_>) -> Result<(), String> {
    let (embed_dim, dim, arms) = (declared(input), declared(input), declared(input));
    let in_range = |n: usize, max: usize| (1..=max).contains(&n);
    let fault = |what: &str, n: usize| vec![format!("{what} {n} is outside")];
    expect_output_error(
        "embedder dimension",
        validate::embedder_dim(embed_dim),
        in_range(embed_dim, validate::MAX_EMBED_DIM),
        &fault("dimension", embed_dim),
    )?;
    let mut faults = Vec::new();
    if !in_range(dim, validate::MAX_POLICY_DIM) {
        faults.extend(fault("dimension", dim));
    }
    if !in_range(arms, validate::MAX_ARMS) {
        faults.extend(fault("arm count", arms));
    }
    expect_output_error(
        "policy shape",
        validate::policy_shape(dim, arms),
        faults.is_empty(),
        &faults,
    )
}

fn check_embedding(input: &mut Bytes<'_>, bound: f32) -> Result<(), String> {
    let dim = declared(input);
    let len = usize::from(input.u8() % 24);
    let values: Vec<f32> = (0..len).map(|_| input.value(bound)).collect();
    let mut faults = Vec::new();
    if len != dim {
        faults.push(format!("expected {dim} values, found {len}"));
    } else {
        for (i, v) in values.iter().enumerate() {
            if !v.is_finite() || v.abs() > bound {
                faults.push(format!("value {i} "));
            }
        }
    }
    expect_output_error(
        "embedding",
        validate::embedding(&values, dim, bound),
        faults.is_empty(),
        &faults,
    )
}

fn check_selection(input: &mut Bytes<'_>, bound: f32) -> Result<(), String> {
    let arms = usize::from(input.u8() % 9);
    let count = usize::from(input.u8() % 10);
    let arm = match input.u8() {
        b @ 0..=199 => u32::from(b % 10),
        _ => input.u32(),
    };
    let scores: Vec<ArmScore<f32>> = (0..count)
        .map(|_| ArmScore {
            estimate: input.value(bound),
            width: input.value(bound),
            score: input.value(bound),
        })
        .collect();
    let mut faults = Vec::new();
    if count != arms {
        faults.push(format!("expected {arms} scores, found {count}"));
    } else {
        for (i, s) in scores.iter().enumerate() {
            for (field, v) in [
                ("estimate", s.estimate),
                ("width", s.width),
                ("score", s.score),
            ] {
                if !v.is_finite() || v.abs() > bound {
                    faults.push(format!("arm {i}: {field} = "));
                }
            }
            if s.width < 0.0 {
                faults.push(format!("arm {i}: width {} is negative", s.width));
            }
        }
        let chosen = arm as usize;
        if chosen >= arms {
            faults.push(format!("chose arm {chosen} of a pool of {arms}"));
        } else if faults.is_empty() {
            // The first arm whose score no other arm beats: ties go to the lowest index.
            let top = scores.iter().map(|s| s.score).fold(f32::MIN, f32::max);
            let best = scores.iter().position(|s| s.score == top);
            if best != Some(chosen) {
                faults.push(format!("chose arm {chosen}, but arm"));
            }
        }
    }
    let result = validate::selection(arm, &scores, arms, bound);
    if let Ok(got) = &result
        && got.index() != arm as usize
    {
        return Err(format!(
            "selection: accepted arm {arm} but returned {got:?}"
        ));
    }
    expect_output_error("selection", result.map(|_| ()), faults.is_empty(), &faults)
}

fn check_snapshot(input: &mut Bytes<'_>) -> Result<(), String> {
    let room = usize::from(input.u8());
    let bytes = input.rest().to_vec();
    let mut out = vec![0xA5u8; room];
    match validate::snapshot_into(&bytes, &mut out, "testkit") {
        Ok(n) if bytes.len() <= room => {
            let copied = out.get(..n) == Some(bytes.as_slice()) && n == bytes.len();
            let rest_untouched = out.get(n..).is_some_and(|r| r.iter().all(|b| *b == 0xA5));
            if copied && rest_untouched {
                Ok(())
            } else {
                Err(format!(
                    "snapshot of {} bytes into {room}: wrote {n}, copied {copied}, rest \
                     untouched {rest_untouched}",
                    bytes.len()
                ))
            }
        }
        Ok(n) => Err(format!(
            "snapshot of {} bytes accepted into a buffer of {room} ({n} written)",
            bytes.len()
        )),
        Err(e) if bytes.len() > room => {
            if e.kind() != ErrorKind::BufferTooSmall {
                return Err(format!("snapshot too big: error of kind {:?}", e.kind()));
            }
            if out.iter().all(|b| *b == 0xA5) {
                Ok(())
            } else {
                Err("snapshot too big: the buffer was written anyway".into())
            }
        }
        Err(e) => Err(format!(
            "snapshot of {} bytes rejected for a buffer of {room}: {e}",
            bytes.len()
        )),
    }
}

/// Inputs that reach every case, valid and invalid, to start the corpus from.
pub fn plugin_output_seeds() -> Vec<Vec<u8>> {
    vec![
        // shapes: a valid embedder dim and policy shape; then zero arms.
        vec![0, 0, 8, 16, 11],
        vec![0, 0, 8, 16, 0],
        // embedding: dim 3, three small values (valid); one NaN; a value past the bound.
        vec![1, 0, 3, 3, 0, 16, 1, 250, 2, 3],
        vec![1, 0, 3, 3, 0, 16, 4, 2, 3],
        vec![1, 1, 2, 2, 6, 2, 0, 5],
        // selection: 2 arms, arm 1 best (valid); arm 0 chosen though arm 1 is best.
        vec![2, 0, 2, 2, 1, 0, 8, 0, 0, 0, 8, 0, 16, 0, 0, 0, 16],
        vec![2, 0, 2, 2, 0, 0, 8, 0, 0, 0, 8, 0, 16, 0, 0, 0, 16],
        // selection: a negative width.
        vec![2, 0, 1, 1, 0, 0, 8, 0, 240, 0, 8],
        // snapshot: fits, and one byte too big.
        vec![3, 0, 4, 1, 2, 3],
        vec![3, 0, 1, 1, 2],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_pass_the_oracle_and_cover_every_case() {
        let seeds = plugin_output_seeds();
        for seed in &seeds {
            check_plugin_outputs(seed).unwrap();
        }
        for case in 0..4u8 {
            assert!(
                seeds.iter().any(|s| s.first() == Some(&case)),
                "case {case}"
            );
        }
        assert!(check_plugin_outputs(&[]).is_ok());
    }

    #[test]
    fn valid_seeds_are_valid_and_invalid_ones_are_not() {
        // The oracle must be exercised on both sides, not only on rejections.
        let seeds = plugin_output_seeds();
        let mut input = Bytes {
            data: &seeds[2],
            at: 4,
        };
        let values: Vec<f32> = (0..3).map(|_| input.value(1e6)).collect();
        assert!(validate::embedding(&values, 3, 1e6).is_ok(), "{values:?}");
        let mut input = Bytes {
            data: &seeds[5],
            at: 5,
        };
        let scores: Vec<ArmScore<f32>> = (0..2)
            .map(|_| ArmScore {
                estimate: input.value(1e6),
                width: input.value(1e6),
                score: input.value(1e6),
            })
            .collect();
        assert!(
            validate::selection(1, &scores, 2, 1e6).is_ok(),
            "{scores:?}"
        );
        assert!(validate::selection(0, &scores, 2, 1e6).is_err());
    }
}
