//! The prior file: postcard inside `pilot_core::envelope` (magic `PPRI`, version, CRC-32), and a
//! JSON export for inspection. Loading checks the frame, the dimensions and the embedder id.

use std::path::Path;

use pilot_core::ErrorKind;
use pilot_core::envelope::{self, HEADER_LEN};

use crate::error::{PriorError, Result};
use crate::model::Prior;

/// The envelope magic of a prior file.
pub const MAGIC: [u8; 4] = *b"PPRI";
/// The payload format version.
pub const VERSION: u16 = 1;

/// What a loader requires of a prior; `None` accepts anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect<'a> {
    /// The embedder id the caller's base vectors come from.
    pub embedder_id: Option<&'a str>,
    /// The dimension of the caller's base vectors.
    pub d_in: Option<usize>,
}

impl Prior {
    /// Encodes the prior: the envelope header, then the postcard payload.
    ///
    /// # Errors
    /// [`Corrupt`](ErrorKind::Corrupt) if postcard fails (it should not for a valid prior).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let payload = postcard::to_allocvec(self).map_err(|e| {
            PriorError::new(ErrorKind::Corrupt, format!("cannot encode the prior: {e}"))
        })?;
        let mut buf = vec![0u8; HEADER_LEN + payload.len()];
        buf[HEADER_LEN..].copy_from_slice(&payload);
        let n = envelope::seal(&mut buf, MAGIC, VERSION, payload.len())
            .map_err(|e| PriorError::core("prior file", e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Decodes and checks a prior; `name` names the bytes in errors.
    ///
    /// # Errors
    /// The envelope's errors (truncated, another file type, another version, checksum), a
    /// payload that does not decode, inconsistent dimensions or NaN, and a mismatch with
    /// `expect` (another embedder, another input dimension): never a silently wrong prior.
    pub fn from_bytes(bytes: &[u8], expect: Expect<'_>, name: &str) -> Result<Self> {
        let payload = envelope::open(bytes, MAGIC, VERSION).map_err(|e| {
            let hint = match e.kind() {
                ErrorKind::WrongFormat => " (not a PILOT prior file)",
                ErrorKind::ChecksumMismatch | ErrorKind::Truncated => " (the file is damaged)",
                _ => "",
            };
            PriorError::core(format!("{name}{hint}"), e)
        })?;
        let prior: Prior = postcard::from_bytes(payload).map_err(|e| {
            PriorError::new(
                ErrorKind::Corrupt,
                format!("{name}: the prior payload does not decode: {e}"),
            )
        })?;
        prior
            .validate()
            .map_err(|e| PriorError::core(format!("{name}: invalid prior"), e))?;
        prior.check(expect, name)?;
        Ok(prior)
    }

    /// Checks the prior against what the caller's vectors are.
    ///
    /// # Errors
    /// [`WrongFormat`](ErrorKind::WrongFormat) for another embedder id,
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) for another input dimension.
    pub fn check(&self, expect: Expect<'_>, name: &str) -> Result<()> {
        if let Some(id) = expect.embedder_id
            && id != self.embedder_id
        {
            return Err(PriorError::new(
                ErrorKind::WrongFormat,
                format!(
                    "{name}: the prior was learned on embedder \"{}\", but the vectors come from \"{id}\"",
                    self.embedder_id
                ),
            ));
        }
        if let Some(d_in) = expect.d_in
            && d_in != self.d_in
        {
            return Err(PriorError::new(
                ErrorKind::DimensionMismatch,
                format!(
                    "{name}: the prior expects base vectors of dimension {}, found {d_in}",
                    self.d_in
                ),
            ));
        }
        Ok(())
    }

    /// Writes the prior file.
    ///
    /// # Errors
    /// Encoding or I/O errors naming `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|e| {
            PriorError::new(
                ErrorKind::Io,
                format!("{}: cannot write: {e}", path.display()),
            )
        })
    }

    /// Reads and checks a prior file.
    ///
    /// # Errors
    /// I/O errors and everything [`from_bytes`](Self::from_bytes) rejects, naming `path`.
    pub fn load(path: impl AsRef<Path>, expect: Expect<'_>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            PriorError::new(
                ErrorKind::Io,
                format!("{}: cannot read: {e}", path.display()),
            )
        })?;
        Self::from_bytes(&bytes, expect, &path.display().to_string())
    }

    /// The prior as pretty JSON, for inspection.
    ///
    /// # Errors
    /// [`Corrupt`](ErrorKind::Corrupt) if serialisation fails.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| {
            PriorError::new(
                ErrorKind::Corrupt,
                format!("cannot write the prior as JSON: {e}"),
            )
        })
    }

    /// Writes the JSON export.
    ///
    /// # Errors
    /// Serialisation or I/O errors naming `path`.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|e| {
            PriorError::new(
                ErrorKind::Io,
                format!("{}: cannot write: {e}", path.display()),
            )
        })
    }
}
