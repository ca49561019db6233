//! Fuzzing oracle for prior files: arbitrary bytes through [`Prior::from_bytes`]. A fuzz
//! target is three lines:
//!
//! ```
//! # let data: &[u8] = &[1, 0, 0];
//! if let Err(why) = pilot_prior::testkit::check_prior_bytes(data) {
//!     panic!("{why}");
//! }
//! ```

use pilot_core::envelope::{self, HEADER_LEN};

use crate::{Calibration, Expect, LlmVector, MAGIC, Prior, VERSION};

const NAME: &str = "fuzz.prior";

/// Byte 0 picks whether the rest is a whole file (envelope included) or a payload to frame
/// with a valid envelope and CRC (so the fuzzer reaches the postcard decoder), and what the
/// loader expects (embedder id, input dimension). Checks: no panic; an error names the file;
/// a decoded prior is valid — every number finite, it re-encodes and decodes to itself, and
/// its context map either fails with an error or yields a finite unit vector and a 1.
///
/// # Errors
/// A message naming the broken property.
pub fn check_prior_bytes(data: &[u8]) -> Result<(), String> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    let framed;
    let bytes = if mode & 1 == 0 {
        rest
    } else {
        let mut buf = vec![0u8; HEADER_LEN + rest.len()];
        buf[HEADER_LEN..].copy_from_slice(rest);
        let n = envelope::seal(&mut buf, MAGIC, VERSION, rest.len()).map_err(|e| e.to_string())?;
        buf.truncate(n);
        framed = buf;
        &framed
    };
    let expect = Expect {
        embedder_id: (mode & 2 != 0).then_some("fuzz-embedder"),
        d_in: (mode & 4 != 0).then_some(usize::from(mode >> 3)),
    };
    let prior = match Prior::from_bytes(bytes, expect, NAME) {
        Ok(prior) => prior,
        Err(e) if e.message().contains(NAME) => return Ok(()),
        Err(e) => return Err(format!("error does not name the file: {e}")),
    };
    check_valid(&prior)
}

fn check_valid(prior: &Prior) -> Result<(), String> {
    let cal = prior.calibration();
    let numbers_finite = prior
        .projection()
        .iter()
        .chain(prior.offset())
        .all(|v| v.is_finite())
        && prior
            .llms()
            .iter()
            .all(|l| l.theta.iter().chain(&l.raw).all(|v| v.is_finite()))
        && cal.scale.is_finite()
        && cal.rmse.is_finite()
        && cal.intercepts.iter().all(|v| v.is_finite());
    if !numbers_finite {
        return Err(String::from("a decoded prior holds a NaN/∞"));
    }
    let again = prior
        .to_bytes()
        .map_err(|e| format!("a decoded prior does not encode: {e}"))?;
    let back = Prior::from_bytes(&again, Expect::default(), NAME)
        .map_err(|e| format!("a re-encoded prior does not decode: {e}"))?;
    if &back != prior {
        return Err(String::from("decode → encode → decode changed the prior"));
    }
    // Keep the context check cheap for huge (but consistent) dimensions.
    if prior.d_in() <= 4096 && prior.d() <= 4096 {
        let x = vec![0.5f32; prior.d_in()];
        let mut out = vec![0f32; prior.context_dim()];
        if prior.context(&x, &mut out).is_ok() {
            let norm: f32 = out[..prior.d()].iter().map(|v| v * v).sum::<f32>().sqrt();
            if !out.iter().all(|v| v.is_finite())
                || (norm - 1.0).abs() > 1e-3
                || out.last() != Some(&1.0)
            {
                return Err(format!("context is not [unit vector, 1]: norm {norm}"));
            }
            // Huge but finite θ' may overflow the dot product: an error is the right answer
            // then, a non-finite prediction is not.
            for l in prior.llms() {
                if let Ok(Some(v)) = prior.predict(&l.name, &out)
                    && !v.is_finite()
                {
                    return Err(format!("predict returned {v} for {}", l.name));
                }
            }
        }
    }
    Ok(())
}

/// Valid inputs for [`check_prior_bytes`]: a small prior as a whole file and as a payload, with
/// and without expectations. Seeds for the corpus.
///
/// # Errors
/// A message if the seed prior cannot be built or encoded.
pub fn prior_seeds() -> Result<Vec<Vec<u8>>, String> {
    let llm = |name: &str, t: f32| LlmVector {
        name: name.to_string(),
        theta: vec![t, -t, 0.5],
        raw: vec![2.0 * t, 0.1, -0.3],
        pairs: 12,
    };
    let prior = Prior::new(
        "fuzz-embedder".to_string(),
        3,
        2,
        vec![0.5, -0.25, 1.0, 0.0, 0.75, -1.0],
        vec![0.1, -0.2],
        vec![llm("a", 0.3), llm("b", -0.6)],
        Calibration {
            scale: 0.4,
            intercepts: vec![0.1, 0.2],
            target: "quality".to_string(),
            rmse: 0.05,
        },
        vec!["c".to_string()],
        "fuzz seeds".to_string(),
        7,
    )
    .map_err(|e| e.to_string())?;
    let file = prior.to_bytes().map_err(|e| e.to_string())?;
    let payload = file.get(HEADER_LEN..).unwrap_or(&[]);
    let mut seeds = Vec::new();
    for mode in [0u8, 1, 3, 1 | 4 | (3 << 3), 2 | 4 | (3 << 3)] {
        let mut s = vec![mode];
        s.extend_from_slice(if mode & 1 == 0 { &file } else { payload });
        seeds.push(s);
    }
    Ok(seeds)
}
