//! Raw embedding files: little-endian f32, `dim` values per row, no header, row i = line i.

use std::path::{Path, PathBuf};

use pilot_core::ErrorKind;

use crate::error::{DataError, Result};

/// A rows × dim matrix of f32 embeddings, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embeddings {
    source: PathBuf,
    dim: usize,
    data: Vec<f32>,
}

impl Embeddings {
    /// Reads a raw little-endian f32 file of rows of `dim` values.
    ///
    /// # Errors
    /// A [`DataError`] naming the file: unreadable, `dim == 0`, empty, a size that is not a
    /// multiple of `4 · dim` bytes (the message names both), or a NaN/∞ value (naming its row
    /// and column).
    pub fn load(path: impl AsRef<Path>, dim: usize) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        Self::from_le_bytes(&bytes, dim, path)
    }

    /// Reads an embedding file that must have exactly `rows` rows (one per dataset line).
    ///
    /// # Errors
    /// As [`load`](Self::load), and a [`DimensionMismatch`](ErrorKind::DimensionMismatch) when
    /// the row count differs from `rows`.
    pub fn load_rows(path: impl AsRef<Path>, dim: usize, rows: usize) -> Result<Self> {
        let e = Self::load(path, dim)?;
        e.expect_rows(rows)?;
        Ok(e)
    }

    /// Decodes raw little-endian f32 bytes; `path` only names them in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load), except I/O.
    pub fn from_le_bytes(bytes: &[u8], dim: usize, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if dim == 0 {
            return Err(DataError::new(
                ErrorKind::InvalidParameter,
                path,
                "the embedding dimension must be at least 1, found 0",
            ));
        }
        if bytes.is_empty() {
            return Err(DataError::new(
                ErrorKind::Empty,
                path,
                "the embedding file is empty",
            ));
        }
        let row_bytes = 4 * dim;
        if !bytes.len().is_multiple_of(row_bytes) {
            return Err(DataError::new(
                ErrorKind::DimensionMismatch,
                path,
                format!(
                    "the file has {} bytes, which is not a multiple of 4 · dim = {row_bytes} (dim = {dim}); \
                     wrong dimension or a truncated file",
                    bytes.len()
                ),
            ));
        }
        let mut data = Vec::with_capacity(bytes.len() / 4);
        for (i, chunk) in bytes.chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            if !v.is_finite() {
                return Err(DataError::new(
                    ErrorKind::NonFinite,
                    path,
                    format!("row {} column {} is {v}", i / dim, i % dim),
                ));
            }
            data.push(v);
        }
        Ok(Self {
            source: path.to_path_buf(),
            dim,
            data,
        })
    }

    /// Builds embeddings from a row-major buffer (for tests and generated data).
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for `dim == 0`,
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `data.len()` is not a multiple of
    /// `dim`, [`NonFinite`](ErrorKind::NonFinite) for NaN/∞.
    pub fn from_vec(data: Vec<f32>, dim: usize, name: impl AsRef<Path>) -> Result<Self> {
        let name = name.as_ref();
        if dim == 0 {
            return Err(DataError::new(
                ErrorKind::InvalidParameter,
                name,
                "the embedding dimension must be at least 1, found 0",
            ));
        }
        if !data.len().is_multiple_of(dim) {
            return Err(DataError::new(
                ErrorKind::DimensionMismatch,
                name,
                format!("{} values is not a multiple of dim = {dim}", data.len()),
            ));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(DataError::new(
                ErrorKind::NonFinite,
                name,
                format!("row {} column {} is {}", i / dim, i % dim, data[i]),
            ));
        }
        Ok(Self {
            source: name.to_path_buf(),
            dim,
            data,
        })
    }

    /// Checks that there is one row per dataset line.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) naming both counts.
    pub fn expect_rows(&self, rows: usize) -> Result<()> {
        if self.rows() == rows {
            Ok(())
        } else {
            Err(DataError::new(
                ErrorKind::DimensionMismatch,
                &self.source,
                format!(
                    "expected {rows} rows of {} values (one per dataset line), found {} rows",
                    self.dim,
                    self.rows()
                ),
            ))
        }
    }

    /// Where the embeddings came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Values per row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Row `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        let start = i.checked_mul(self.dim)?;
        self.data.get(start..start.checked_add(self.dim)?)
    }

    /// The rows in order.
    pub fn iter(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.dim.max(1))
    }

    /// The whole row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Writes rows as raw little-endian f32.
    ///
    /// # Errors
    /// An I/O [`DataError`] naming `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut bytes = Vec::with_capacity(self.data.len() * 4);
        for v in &self.data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(path, bytes).map_err(|e| DataError::io(path, e))
    }
}
