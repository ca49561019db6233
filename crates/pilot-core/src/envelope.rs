//! The frame around every saved state: magic, format version, length and CRC-32.
//!
//! ```text
//! offset 0  magic    [u8; 4]   what the bytes are ("PBND" for a bandit snapshot, say)
//! offset 4  version  u16 LE    format version of the payload
//! offset 6  reserved u16 LE    zero
//! offset 8  length   u32 LE    payload length in bytes
//! offset 12 crc32    u32 LE    CRC-32 (ISO-HDLC, as zip and PNG) of the payload
//! offset 16 payload
//! ```
//!
//! The payload itself is postcard in the crates that use it; this module only frames bytes,
//! so truncation, corruption, foreign files and old versions are caught before decoding.

use crate::{Detail, Error, ErrorKind, Result};

/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// CRC-32 (ISO-HDLC) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    CRC.checksum(bytes)
}

/// Frames a payload already written at `buf[HEADER_LEN..HEADER_LEN + payload_len]`: writes the
/// header and returns the total length.
///
/// # Errors
/// [`BufferTooSmall`](ErrorKind::BufferTooSmall) when `buf` is shorter than header + payload,
/// [`CapacityExceeded`](ErrorKind::CapacityExceeded) for a payload over 4 GiB.
pub fn seal(buf: &mut [u8], magic: [u8; 4], version: u16, payload_len: usize) -> Result<usize> {
    let total = HEADER_LEN.saturating_add(payload_len);
    if buf.len() < total {
        return Err(
            Error::new(ErrorKind::BufferTooSmall, "envelope::seal").with_detail(Detail::Mismatch {
                expected: total,
                found: buf.len(),
            }),
        );
    }
    let len = u32::try_from(payload_len).map_err(|_| {
        Error::new(
            ErrorKind::CapacityExceeded,
            "envelope::seal: payload over 4 GiB",
        )
    })?;
    let crc = crc32(&buf[HEADER_LEN..total]);
    buf[0..4].copy_from_slice(&magic);
    buf[4..6].copy_from_slice(&version.to_le_bytes());
    buf[6..8].copy_from_slice(&0u16.to_le_bytes());
    buf[8..12].copy_from_slice(&len.to_le_bytes());
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
    Ok(total)
}

/// Checks the frame of `bytes` and returns the payload.
///
/// # Errors
/// [`Truncated`](ErrorKind::Truncated) when the bytes end early,
/// [`WrongFormat`](ErrorKind::WrongFormat) for another magic,
/// [`VersionMismatch`](ErrorKind::VersionMismatch) for another version,
/// [`Corrupt`](ErrorKind::Corrupt) for trailing bytes or a non-zero reserved field,
/// [`ChecksumMismatch`](ErrorKind::ChecksumMismatch) when the payload was altered.
pub fn open(bytes: &[u8], magic: [u8; 4], version: u16) -> Result<&[u8]> {
    if bytes.len() < HEADER_LEN {
        return Err(
            Error::new(ErrorKind::Truncated, "envelope header").with_detail(Detail::Mismatch {
                expected: HEADER_LEN,
                found: bytes.len(),
            }),
        );
    }
    if bytes[0..4] != magic {
        return Err(Error::new(ErrorKind::WrongFormat, "envelope magic"));
    }
    let found_version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if found_version != version {
        return Err(
            Error::new(ErrorKind::VersionMismatch, "envelope version").with_detail(
                Detail::Mismatch {
                    expected: version as usize,
                    found: found_version as usize,
                },
            ),
        );
    }
    if bytes[6..8] != [0, 0] {
        return Err(Error::new(ErrorKind::Corrupt, "envelope reserved field"));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() < len {
        return Err(
            Error::new(ErrorKind::Truncated, "envelope payload").with_detail(Detail::Mismatch {
                expected: len,
                found: payload.len(),
            }),
        );
    }
    if payload.len() > len {
        return Err(
            Error::new(ErrorKind::Corrupt, "envelope: trailing bytes after payload").with_detail(
                Detail::Mismatch {
                    expected: len,
                    found: payload.len(),
                },
            ),
        );
    }
    let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if crc32(payload) != crc {
        return Err(Error::new(ErrorKind::ChecksumMismatch, "envelope payload"));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_named() {
        let mut buf = [0u8; 32];
        buf[HEADER_LEN..HEADER_LEN + 5].copy_from_slice(b"hello");
        let n = seal(&mut buf, *b"TEST", 3, 5).unwrap();
        assert_eq!(open(&buf[..n], *b"TEST", 3).unwrap(), b"hello");
        assert_eq!(
            open(&buf[..n - 1], *b"TEST", 3).unwrap_err().kind(),
            ErrorKind::Truncated
        );
        assert_eq!(
            open(&buf[..5], *b"TEST", 3).unwrap_err().kind(),
            ErrorKind::Truncated
        );
        assert_eq!(
            open(&buf[..n], *b"XXXX", 3).unwrap_err().kind(),
            ErrorKind::WrongFormat
        );
        assert_eq!(
            open(&buf[..n], *b"TEST", 4).unwrap_err().kind(),
            ErrorKind::VersionMismatch
        );
        assert_eq!(
            open(&buf[..n + 1], *b"TEST", 3).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        buf[HEADER_LEN] ^= 1;
        assert_eq!(
            open(&buf[..n], *b"TEST", 3).unwrap_err().kind(),
            ErrorKind::ChecksumMismatch
        );
        assert_eq!(
            seal(&mut buf[..10], *b"TEST", 3, 5).unwrap_err().kind(),
            ErrorKind::BufferTooSmall
        );
    }
}
