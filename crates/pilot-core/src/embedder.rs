//! The embedder trait: text in, a fixed-dimension vector out, into the caller's buffer.

use crate::Result;

/// Turns text into a vector of [`dim`](Embedder::dim) `f32`s.
///
/// Writing into a caller-provided buffer keeps it usable without an allocator; the same trait
/// covers the hashing embedder, the MiniLM embedder and embedder plugins.
pub trait Embedder {
    /// A stable identifier of the embedding space (model and configuration), such as
    /// `"hash-v1:d=256"` or `"all-MiniLM-L6-v2"`. A prior learned on one space refuses another.
    fn id(&self) -> &str;

    /// Output dimension.
    fn dim(&self) -> usize;

    /// Embeds `text` into `out`.
    ///
    /// # Errors
    /// [`DimensionMismatch`](crate::ErrorKind::DimensionMismatch) when `out.len() != dim()`;
    /// implementation-specific errors otherwise (a plugin's trap, say).
    fn embed(&mut self, text: &str, out: &mut [f32]) -> Result<()>;
}

impl<E: Embedder + ?Sized> Embedder for &mut E {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn embed(&mut self, text: &str, out: &mut [f32]) -> Result<()> {
        (**self).embed(text, out)
    }
}
