//! What the host accepts from a plugin, as pure functions of the plugin's output: the
//! embedder's and policy's shape, an embedding, a selection, a snapshot copied out. No wasm
//! instance is needed to call them, so the fuzz target `plugin_outputs` drives them directly.

use pilot_core::{
    ArmId, ArmScore, Detail, Error as CoreError, ErrorKind, Result as CoreResult, argmax_score,
};

use crate::PluginError;

/// Largest output dimension an embedder plugin may declare.
pub const MAX_EMBED_DIM: usize = 1 << 20;
/// Largest context dimension a policy plugin may declare.
pub const MAX_POLICY_DIM: usize = 1 << 16;
/// Largest pool a policy plugin may declare.
pub const MAX_ARMS: usize = 1 << 16;

fn out_of(call: &'static str, what: &str, n: usize, max: usize) -> PluginError {
    PluginError::Output {
        call,
        message: format!("{what} {n} is outside 1..={max}"),
        detail: Detail::Index { index: n, len: max },
    }
}

/// Checks the dimension an embedder plugin declares: `1..=`[`MAX_EMBED_DIM`].
///
/// # Errors
/// [`PluginError::Output`] naming the dimension.
pub fn embedder_dim(dim: usize) -> Result<(), PluginError> {
    if dim == 0 || dim > MAX_EMBED_DIM {
        return Err(out_of("model.dim", "dimension", dim, MAX_EMBED_DIM));
    }
    Ok(())
}

/// Checks the shape a policy plugin declares: dimension `1..=`[`MAX_POLICY_DIM`], pool
/// `1..=`[`MAX_ARMS`].
///
/// # Errors
/// [`PluginError::Output`] naming the dimension or the arm count.
pub fn policy_shape(dim: usize, arms: usize) -> Result<(), PluginError> {
    if dim == 0 || dim > MAX_POLICY_DIM {
        return Err(out_of("router.dim", "dimension", dim, MAX_POLICY_DIM));
    }
    if arms == 0 || arms > MAX_ARMS {
        return Err(out_of("router.arm-count", "arm count", arms, MAX_ARMS));
    }
    Ok(())
}

/// Checks an embedder's output: exactly `dim` values, each finite and within `[-bound, bound]`.
///
/// # Errors
/// [`PluginError::Output`]: "expected D values, found N", "value i is NaN", "value i = v is
/// outside [-b, b]".
pub fn embedding(out: &[f32], dim: usize, bound: f32) -> Result<(), PluginError> {
    if out.len() != dim {
        return Err(PluginError::Output {
            call: "model.embed",
            message: format!("expected {dim} values, found {}", out.len()),
            detail: Detail::Mismatch {
                expected: dim,
                found: out.len(),
            },
        });
    }
    for (i, v) in out.iter().enumerate() {
        if !v.is_finite() {
            return Err(PluginError::Output {
                call: "model.embed",
                message: format!("value {i} is {v}"),
                detail: Detail::Value(f64::from(*v)),
            });
        }
        if v.abs() > bound {
            return Err(PluginError::Output {
                call: "model.embed",
                message: format!("value {i} = {v} is outside [-{bound}, {bound}]"),
                detail: Detail::Range {
                    value: f64::from(*v),
                    min: -f64::from(bound),
                    max: f64::from(bound),
                },
            });
        }
    }
    Ok(())
}

/// Smallest Euclidean norm an embedding in a table may have: below it the vector is all zero
/// or subnormal and carries no direction.
pub const MIN_EMBED_NORM: f64 = 1e-6;

/// Checks that a table of embeddings (`table.len() / dim` rows of `dim` values, row-major, each
/// already accepted by [`embedding`]) can carry information: no row is all zero or subnormal
/// (norm below [`MIN_EMBED_NORM`]), and the rows are not all one vector. Such an embedder
/// passes every per-vector check and then breaks whatever is fitted on its vectors (a PCA with
/// no components), so it is refused up front.
///
/// # Errors
/// [`PluginError::Output`] from `model.embed` saying "degenerate embeddings: …" and which
/// row, or that every row is the same.
pub fn embedding_spread(table: &[f32], dim: usize) -> Result<(), PluginError> {
    let degenerate = |message: String, detail: Detail| PluginError::Output {
        call: "model.embed",
        message: format!("degenerate embeddings: {message}"),
        detail,
    };
    if dim == 0 {
        return Ok(());
    }
    let rows = table.len() / dim;
    for (i, row) in table.chunks_exact(dim).enumerate() {
        let norm = row
            .iter()
            .map(|v| f64::from(*v) * f64::from(*v))
            .sum::<f64>()
            .sqrt();
        if !(norm >= MIN_EMBED_NORM) {
            return Err(degenerate(
                format!(
                    "vector {i} has norm {norm:e}, below {MIN_EMBED_NORM:e} (all zero or \
                     subnormal values)"
                ),
                Detail::Index {
                    index: i,
                    len: rows,
                },
            ));
        }
    }
    let mut chunks = table.chunks_exact(dim);
    if rows >= 2
        && let Some(first) = chunks.next()
        && chunks.all(|row| row == first)
    {
        return Err(degenerate(
            format!("all {rows} vectors are the same, whatever the text"),
            Detail::Mismatch {
                expected: rows,
                found: 1,
            },
        ));
    }
    Ok(())
}

/// Checks a policy's selection: one score per arm, every estimate, width and score finite and
/// within `[-bound, bound]`, widths non-negative, and the chosen `arm` in the pool and the
/// best-scoring one (ties to the lowest index). Returns the arm.
///
/// # Errors
/// [`PluginError::Output`] saying which of these failed ("expected K scores", "arm i: score =
/// v is not finite or outside …", "arm i: width w is negative", "chose arm a of a pool of K",
/// "chose arm a, but arm b has the highest score").
pub fn selection(
    arm: u32,
    scores: &[ArmScore<f32>],
    arms: usize,
    bound: f32,
) -> Result<ArmId, PluginError> {
    let output = |message: String, detail: Detail| PluginError::Output {
        call: "router.select",
        message,
        detail,
    };
    if scores.len() != arms {
        return Err(output(
            format!("expected {arms} scores, found {}", scores.len()),
            Detail::Mismatch {
                expected: arms,
                found: scores.len(),
            },
        ));
    }
    for (i, s) in scores.iter().enumerate() {
        for (field, v) in [
            ("estimate", s.estimate),
            ("width", s.width),
            ("score", s.score),
        ] {
            if !v.is_finite() || v.abs() > bound {
                return Err(output(
                    format!("arm {i}: {field} = {v} is not finite or outside [-{bound}, {bound}]"),
                    Detail::Range {
                        value: f64::from(v),
                        min: -f64::from(bound),
                        max: f64::from(bound),
                    },
                ));
            }
        }
        if s.width < 0.0 {
            return Err(output(
                format!("arm {i}: width {} is negative", s.width),
                Detail::Value(f64::from(s.width)),
            ));
        }
    }
    let chosen = arm as usize;
    if chosen >= arms {
        return Err(output(
            format!("chose arm {chosen} of a pool of {arms}"),
            Detail::Index {
                index: chosen,
                len: arms,
            },
        ));
    }
    match argmax_score(scores) {
        Some(best) if best.index() == chosen => Ok(best),
        Some(best) => Err(output(
            format!(
                "chose arm {chosen}, but arm {} has the highest score (ties go to the lowest index)",
                best.index()
            ),
            Detail::Index {
                index: chosen,
                len: arms,
            },
        )),
        None => Err(output("no arm has a score".into(), Detail::None)),
    }
}

/// Copies a plugin's snapshot into the caller's buffer; returns its length. `out` is left
/// untouched when it is too small.
///
/// # Errors
/// [`ErrorKind::BufferTooSmall`] with the length needed and the length given.
pub fn snapshot_into(bytes: &[u8], out: &mut [u8], context: &'static str) -> CoreResult<usize> {
    match out.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(bytes.len())
        }
        None => Err(
            CoreError::new(ErrorKind::BufferTooSmall, context).with_detail(Detail::Mismatch {
                expected: bytes.len(),
                found: out.len(),
            }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[f32]) -> Vec<ArmScore<f32>> {
        values
            .iter()
            .map(|&s| ArmScore {
                estimate: s,
                width: 0.0,
                score: s,
            })
            .collect()
    }

    #[test]
    fn embeddings_are_validated() {
        let err = embedding(&[0.0; 3], 4, 10.0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PluginOutput);
        assert!(
            err.to_string().contains("expected 4 values, found 3"),
            "{err}"
        );
        let err = embedding(&[0.0, f32::NAN], 2, 10.0).unwrap_err();
        assert!(err.to_string().contains("value 1 is NaN"), "{err}");
        let err = embedding(&[0.0, 11.0], 2, 10.0).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert!(embedding(&[0.5, -10.0], 2, 10.0).is_ok());
    }

    #[test]
    fn degenerate_tables_are_refused() {
        assert!(embedding_spread(&[1.0, 0.0, 0.0, 1.0], 2).is_ok());
        let err = embedding_spread(&[1.0, 0.0, 0.0, 0.0], 2).unwrap_err();
        assert!(err.to_string().contains("vector 1 has norm 0"), "{err}");
        let err = embedding_spread(&[1.0e-40, 1.0e-40, 0.5, 0.5], 2).unwrap_err();
        assert!(err.to_string().contains("vector 0"), "{err}");
        let err = embedding_spread(&[0.6, 0.8, 0.6, 0.8, 0.6, 0.8], 2).unwrap_err();
        assert!(
            err.to_string().contains("all 3 vectors are the same"),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::PluginOutput);
        // One vector alone is no spread problem.
        assert!(embedding_spread(&[0.6, 0.8], 2).is_ok());
    }

    #[test]
    fn selections_are_validated() {
        assert_eq!(
            selection(1, &scores(&[0.1, 0.5, 0.5]), 3, 10.0).unwrap(),
            ArmId(1)
        );
        let err = selection(2, &scores(&[0.1, 0.5, 0.5]), 3, 10.0).unwrap_err();
        assert!(err.to_string().contains("arm 1 has the highest"), "{err}");
        let err = selection(0, &scores(&[0.1, 0.5]), 3, 10.0).unwrap_err();
        assert!(err.to_string().contains("expected 3 scores"), "{err}");
        let err = selection(5, &scores(&[0.1, 0.5, 0.2]), 3, 10.0).unwrap_err();
        assert!(err.to_string().contains("chose arm 5"), "{err}");
        let err = selection(0, &scores(&[f32::NAN, 0.5, 0.2]), 3, 10.0).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
        let err = selection(0, &scores(&[1e9, 0.5, 0.2]), 3, 10.0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PluginOutput);
    }

    #[test]
    fn shapes_and_snapshots_are_checked() {
        assert!(embedder_dim(1).is_ok() && embedder_dim(MAX_EMBED_DIM).is_ok());
        assert!(embedder_dim(0).is_err() && embedder_dim(MAX_EMBED_DIM + 1).is_err());
        assert!(policy_shape(16, 11).is_ok());
        let err = policy_shape(16, 0).unwrap_err();
        assert!(err.to_string().contains("arm count 0"), "{err}");
        let mut out = [7u8; 4];
        assert_eq!(snapshot_into(&[1, 2], &mut out, "t").unwrap(), 2);
        assert_eq!(out, [1, 2, 7, 7]);
        let err = snapshot_into(&[1; 5], &mut out, "t").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
        assert_eq!(out, [1, 2, 7, 7]);
    }
}
