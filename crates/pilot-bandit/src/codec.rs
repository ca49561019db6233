//! Snapshot payloads: postcard values written one after another into a caller's buffer, framed
//! by `pilot_core::envelope`.
//!
//! A payload is the postcard encoding of a struct whose fields are written in order (integers
//! as varints, floats as little-endian `f32`/`f64` by the policy's scalar width, fixed-length
//! arrays without a length prefix). Writing field by field keeps large states out of any
//! intermediate buffer and needs no allocator.

use pilot_core::envelope::{self, HEADER_LEN};
use pilot_core::{Error, ErrorKind, Real, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Payload format version of every policy snapshot in this crate.
///
/// Version 2 stores each A⁻¹ as its packed lower triangle; version 1 (the full `d × d` matrix)
/// is rejected with a version error.
pub const SNAPSHOT_VERSION: u16 = 2;

/// Upper bound on the encoded length of a `u32` / `usize` varint that fits in `u32`.
pub(crate) const VARINT_U32_MAX: usize = 5;
/// Upper bound on the encoded length of a `u64` varint.
pub(crate) const VARINT_U64_MAX: usize = 10;

/// Writes postcard values into `buf[HEADER_LEN..]`, then seals the envelope.
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            pos: HEADER_LEN,
        }
    }

    pub(crate) fn put<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let rest = self.buf.get_mut(self.pos..).unwrap_or(&mut []);
        let used = postcard::to_slice(value, rest)
            .map_err(|_| Error::new(ErrorKind::BufferTooSmall, "snapshot: save buffer"))?
            .len();
        self.pos += used;
        Ok(())
    }

    pub(crate) fn real<F: Real>(&mut self, value: F) -> Result<()> {
        if F::BYTES == 4 {
            self.put(&value.to_f32())
        } else {
            self.put(&value.to_f64())
        }
    }

    pub(crate) fn reals<F: Real>(&mut self, values: &[F]) -> Result<()> {
        values.iter().try_for_each(|&v| self.real(v))
    }

    /// Frames what was written; returns the total length.
    pub(crate) fn seal(self, magic: [u8; 4]) -> Result<usize> {
        envelope::seal(self.buf, magic, SNAPSHOT_VERSION, self.pos - HEADER_LEN)
    }
}

/// Reads postcard values from an opened payload.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Opens the envelope of `bytes`.
    pub(crate) fn open(bytes: &'a [u8], magic: [u8; 4]) -> Result<Self> {
        Ok(Self {
            rest: envelope::open(bytes, magic, SNAPSHOT_VERSION)?,
        })
    }

    pub(crate) fn take<T: DeserializeOwned>(&mut self, field: &'static str) -> Result<T> {
        match postcard::take_from_bytes::<T>(self.rest) {
            Ok((value, rest)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(postcard::Error::DeserializeUnexpectedEnd) => {
                Err(Error::new(ErrorKind::Truncated, field))
            }
            Err(_) => Err(Error::new(ErrorKind::Corrupt, field)),
        }
    }

    pub(crate) fn real<F: Real>(&mut self, field: &'static str) -> Result<F> {
        let v = if F::BYTES == 4 {
            F::from_f32(self.take::<f32>(field)?)
        } else {
            F::from_f64(self.take::<f64>(field)?)
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(Error::new(ErrorKind::Corrupt, field)
                .with_detail(pilot_core::Detail::Value(v.to_f64())))
        }
    }

    /// Reads `out.len()` finite scalars into `out`.
    pub(crate) fn reals<F: Real>(&mut self, field: &'static str, out: &mut [F]) -> Result<()> {
        out.iter_mut().try_for_each(|v| {
            *v = self.real(field)?;
            Ok(())
        })
    }

    /// Skips `n` scalars, checking each is finite.
    pub(crate) fn skip_reals<F: Real>(&mut self, field: &'static str, n: usize) -> Result<()> {
        (0..n).try_for_each(|_| self.real::<F>(field).map(|_| ()))
    }

    pub(crate) fn u32_as_usize(&mut self, field: &'static str) -> Result<usize> {
        Ok(self.take::<u32>(field)? as usize)
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Corrupt,
                "snapshot: trailing bytes in payload",
            ))
        }
    }
}

/// The scalar width tag stored in each snapshot, so an `f32` policy never restores `f64` bytes.
pub(crate) fn check_width<F: Real>(found: u8) -> Result<()> {
    if usize::from(found) == F::BYTES {
        Ok(())
    } else {
        Err(Error::dimension(
            "snapshot: scalar width in bytes",
            F::BYTES,
            usize::from(found),
        ))
    }
}
