//! Snapshots of the online cost policies' running state (budget, spent, step and each policy's
//! own price or threshold cache), framed by `pilot_core::envelope`.
//!
//! Only what changes while running is saved: the configuration is the caller's, and a restore
//! into a policy configured for another pool size is refused.

use pilot_core::{Detail, Error, ErrorKind, Result, envelope};

/// Version of the cost-policy snapshot payload.
pub const COST_SNAPSHOT_VERSION: u16 = 1;

/// Words saved by every policy: arm count, then the ledger's budget, reserve, spent, step.
const COMMON: usize = 5;

/// Bytes of a snapshot holding `extra` policy-specific words.
pub(crate) const fn len(extra: usize) -> usize {
    envelope::HEADER_LEN + 8 * (COMMON + extra)
}

/// Writes `arms`, the ledger words and `extra` into `out`.
pub(crate) fn save(
    out: &mut [u8],
    magic: [u8; 4],
    arms: usize,
    ledger: [u64; 4],
    extra: &[u64],
) -> Result<usize> {
    let total = len(extra.len());
    if out.len() < total {
        return Err(
            Error::new(ErrorKind::BufferTooSmall, "cost policy snapshot").with_detail(
                Detail::Mismatch {
                    expected: total,
                    found: out.len(),
                },
            ),
        );
    }
    let words = core::iter::once(arms as u64)
        .chain(ledger)
        .chain(extra.iter().copied());
    for (chunk, w) in out[envelope::HEADER_LEN..total]
        .chunks_exact_mut(8)
        .zip(words)
    {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    envelope::seal(
        out,
        magic,
        COST_SNAPSHOT_VERSION,
        total - envelope::HEADER_LEN,
    )
}

/// Opens a snapshot written by [`save`] with `N` extra words for a pool of `arms` arms.
pub(crate) fn open<const N: usize>(
    bytes: &[u8],
    magic: [u8; 4],
    arms: usize,
) -> Result<([u64; 4], [u64; N])> {
    let payload = envelope::open(bytes, magic, COST_SNAPSHOT_VERSION)?;
    if payload.len() != 8 * (COMMON + N) {
        return Err(
            Error::new(ErrorKind::Corrupt, "cost policy snapshot: payload length").with_detail(
                Detail::Mismatch {
                    expected: 8 * (COMMON + N),
                    found: payload.len(),
                },
            ),
        );
    }
    let mut words = payload.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_le_bytes(b)
    });
    let saved_arms = words.next().unwrap_or(0);
    if saved_arms != arms as u64 {
        return Err(Error::dimension(
            "cost policy snapshot: arm count (grow the pool before restoring)",
            arms,
            usize::try_from(saved_arms).unwrap_or(usize::MAX),
        ));
    }
    let mut ledger = [0u64; 4];
    for w in &mut ledger {
        *w = words.next().unwrap_or(0);
    }
    let mut extra = [0u64; N];
    for w in &mut extra {
        *w = words.next().unwrap_or(0);
    }
    Ok((ledger, extra))
}
