//! Phase 1a: the projection starts as PCA of the learning queries (linfa-reduction), with the
//! centring folded into an offset so the projection stays one affine map `W·x + b`.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_reduction::Pca;
use ndarray::Array2;
use pilot_core::ErrorKind;

use crate::dataset::LearningSet;
use crate::error::{PriorError, Result};

/// `W` (`d × d_in`, the top principal directions) and `b = −W·mean`.
pub(crate) fn pca_init(set: &LearningSet, d: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = set.n();
    if d > set.d_in {
        return Err(PriorError::new(
            ErrorKind::InvalidParameter,
            format!(
                "fit parameter `dim`: expected at most the base dimension {}, found {d}",
                set.d_in
            ),
        ));
    }
    if n <= d {
        return Err(PriorError::new(
            ErrorKind::Empty,
            format!("PCA to {d} dimensions needs more than {d} learning queries, found {n}"),
        ));
    }
    let records = Array2::from_shape_vec((n, set.d_in), set.x.clone())
        .map_err(|e| PriorError::new(ErrorKind::DimensionMismatch, format!("PCA input: {e}")))?;
    let dataset = DatasetBase::from(records);
    let pca = Pca::params(d)
        .fit(&dataset)
        .map_err(|e| PriorError::new(ErrorKind::InvalidParameter, format!("PCA failed: {e}")))?;
    let comps = pca.components();
    if comps.shape() != [d, set.d_in] {
        return Err(PriorError::new(
            ErrorKind::DimensionMismatch,
            format!(
                "PCA returned components of shape {:?}, expected [{d}, {}]",
                comps.shape(),
                set.d_in
            ),
        ));
    }
    let w: Vec<f64> = comps.iter().copied().collect();
    let mean = pca.mean();
    let b = w
        .chunks_exact(set.d_in)
        .map(|row| -row.iter().zip(mean.iter()).map(|(a, m)| a * m).sum::<f64>())
        .collect();
    if w.iter().any(|v| !v.is_finite()) {
        return Err(PriorError::new(
            ErrorKind::NonFinite,
            "PCA returned NaN components",
        ));
    }
    Ok((w, b))
}
