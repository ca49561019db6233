//! The hashing embedder: text → a signed bag of hashed words and character 3-grams in `D`
//! buckets, L2-normalised. No allocator, no data files, the same bits on every platform.
//!
//! # What is hashed
//!
//! The text is split into *words*: maximal runs of alphanumeric characters
//! ([`char::is_alphanumeric`], so Unicode letters and digits count; everything else separates).
//! Each character is lowercased with [`char::to_lowercase`] (full Unicode, from `core`'s tables,
//! so no allocator is needed). Every word contributes
//!
//! * one **word feature**: the word's UTF-8 bytes, and
//! * its **character 3-grams**, taken over the word padded with boundary marks `<` and `>`
//!   (`"cat"` → `<ca`, `cat`, `at>`; a one-letter word `"a"` → `<a>`), which makes similar
//!   spellings (`route`, `routes`, `routing`) land near each other.
//!
//! Each feature is hashed with 64-bit FNV-1a over a one-byte kind tag (`w` or `g`) followed by
//! its UTF-8 bytes, then mixed with the `fmix64` finaliser of MurmurHash3 so that low and high
//! bits are both usable. Bucket = `h mod D`; sign = the top bit of `h`. Everything is computed
//! in `u64`, never `usize`, and `std::hash` is not used, so the output is identical on 32- and
//! 64-bit targets, on wasm32 and on a Cortex-M.
//!
//! # Why signs
//!
//! With `D` buckets, distinct features collide. Adding `±1` (a sign drawn from the hash) instead
//! of `+1` makes collisions cancel in expectation, so the inner product of two embeddings is an
//! unbiased estimate of the inner product of their exact (unhashed) feature counts
//! (Weinberger et al., 2009, "Feature hashing for large scale multitask learning").
//!
//! Should the signed features of a very short text cancel exactly (two features in one bucket
//! with opposite signs, about 1 in `2·D` for a one-letter text), the embedder adds them unsigned
//! instead, so every text with a word gets a direction.
//!
//! Counts are small integers, which `f32` holds exactly, and the final normalisation uses
//! `libm`'s correctly rounded square root, so results are bit-identical across platforms.
//! Text with no alphanumeric character has no features and is an error
//! ([`ZeroVector`](pilot_core::ErrorKind::ZeroVector)), never a NaN vector.

use pilot_core::{Embedder, Error, ErrorKind, Result};

use crate::linalg;

/// The 64-bit FNV-1a offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The 64-bit FNV-1a prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Tag byte hashed before a word feature.
const WORD_TAG: u8 = b'w';
/// Tag byte hashed before a character 3-gram feature.
const GRAM_TAG: u8 = b'g';
/// Boundary mark before a word's first character in its 3-grams.
const WORD_START: char = '<';
/// Boundary mark after a word's last character in its 3-grams.
const WORD_END: char = '>';

/// The identifier prefix; bump the version whenever the output for some text changes.
const ID_PREFIX: &str = "hash-v1:d=";
/// Room for the prefix and the 20 digits of the largest `u64`.
const ID_CAPACITY: usize = 32;

/// Streaming 64-bit FNV-1a.
#[derive(Clone, Copy, Debug)]
struct Fnv1a(u64);

impl Fnv1a {
    const fn new() -> Self {
        Self(FNV_OFFSET)
    }

    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        self
    }

    fn char(self, c: char) -> Self {
        let mut buf = [0u8; 4];
        self.bytes(c.encode_utf8(&mut buf).as_bytes())
    }
}

/// 64-bit FNV-1a of `bytes` (platform-independent; the embedder's base hash).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    Fnv1a::new().bytes(bytes).0
}

/// MurmurHash3's 64-bit finaliser: spreads every input bit over every output bit.
const fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Where features go: the buckets, and whether each feature adds its hash's sign or `+1`.
struct Sink<'a> {
    out: &'a mut [f32],
    signed: bool,
    features: usize,
}

impl Sink<'_> {
    /// Adds the feature with raw hash `raw` (`out` is non-empty).
    fn add(&mut self, raw: u64) {
        let h = fmix64(raw);
        // `out.len()` fits in u64 on every target Rust supports, and the remainder is below it.
        let bucket = (h % self.out.len() as u64) as usize;
        let sign = if self.signed && h >> 63 == 1 {
            -1.0
        } else {
            1.0
        };
        if let Some(slot) = self.out.get_mut(bucket) {
            *slot += sign;
        }
        self.features += 1;
    }
}

/// The word being read: its running hash and the last two characters for the 3-gram window.
struct OpenWord {
    hash: Fnv1a,
    window: [char; 2],
}

impl OpenWord {
    fn new() -> Self {
        Self {
            hash: Fnv1a::new().bytes(&[WORD_TAG]),
            window: [WORD_START, WORD_START],
        }
    }

    /// Adds the lowercase character `c`; every character after the first completes a 3-gram
    /// (the first gram is `<` + the first two characters).
    fn push(&mut self, c: char, first: bool, out: &mut Sink<'_>) {
        self.hash = self.hash.char(c);
        if !first {
            out.add(gram(self.window[0], self.window[1], c));
        }
        self.window = [self.window[1], c];
    }

    /// Adds the word feature and the closing gram (`<a>` for a one-letter word).
    fn finish(self, out: &mut Sink<'_>) {
        out.add(self.hash.0);
        out.add(gram(self.window[0], self.window[1], WORD_END));
    }
}

/// The raw hash of a 3-gram.
fn gram(a: char, b: char, c: char) -> u64 {
    Fnv1a::new().bytes(&[GRAM_TAG]).char(a).char(b).char(c).0
}

/// Adds every feature of `text` to `out` (non-empty) without normalising.
fn accumulate(text: &str, out: &mut Sink<'_>) {
    let mut word: Option<OpenWord> = None;
    for c in text.chars() {
        if !c.is_alphanumeric() {
            if let Some(w) = word.take() {
                w.finish(out);
            }
            continue;
        }
        for lower in c.to_lowercase() {
            match word.as_mut() {
                Some(w) => w.push(lower, false, out),
                None => {
                    let mut w = OpenWord::new();
                    w.push(lower, true, out);
                    word = Some(w);
                }
            }
        }
    }
    if let Some(w) = word {
        w.finish(out);
    }
}

/// Embeds `text` into `out` (any non-zero length): the run-time-dimension core of the embedder.
///
/// # Errors
/// [`InvalidParameter`](ErrorKind::InvalidParameter) for an empty `out`,
/// [`ZeroVector`](ErrorKind::ZeroVector) when `text` has no alphanumeric character (then `out`
/// is all zeros).
pub fn embed_into(text: &str, out: &mut [f32]) -> Result<()> {
    if out.is_empty() {
        return Err(Error::invalid_parameter("hashing embedder: dimension", 0.0));
    }
    for signed in [true, false] {
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut sink = Sink {
            out: &mut *out,
            signed,
            features: 0,
        };
        accumulate(text, &mut sink);
        if sink.features == 0 {
            break;
        }
        // Signed features can cancel exactly (two features, one bucket, opposite signs: about
        // 1 in 2·D for a one-letter text); unsigned counts cannot, so they are the fallback.
        if linalg::normalize(out).is_ok() {
            return Ok(());
        }
    }
    out.iter_mut().for_each(|v| *v = 0.0);
    Err(Error::new(
        ErrorKind::ZeroVector,
        "hashing embedder: text has no words",
    ))
}

/// Embeds `text` into a `D`-dimensional array: the const-generic convenience.
///
/// # Errors
/// As [`embed_into`].
pub fn embed<const D: usize>(text: &str) -> Result<[f32; D]> {
    let mut out = [0.0; D];
    embed_into(text, &mut out)?;
    Ok(out)
}

/// The hashing embedder as a [`pilot_core::Embedder`], with its dimension chosen at run time.
///
/// ```
/// use pilot_core::Embedder;
/// use pilot_embed::hashing::HashingEmbedder;
///
/// let mut embedder = HashingEmbedder::new(256)?;
/// assert_eq!(embedder.id(), "hash-v1:d=256");
/// let mut v = [0.0f32; 256];
/// embedder.embed("Which LLM should answer this?", &mut v)?;
/// let len: f32 = v.iter().map(|x| x * x).sum();
/// assert!((len - 1.0).abs() < 1e-5);
/// # Ok::<(), pilot_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HashingEmbedder {
    dim: usize,
    id: [u8; ID_CAPACITY],
    id_len: usize,
}

impl HashingEmbedder {
    /// An embedder writing `dim` values.
    ///
    /// # Errors
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for `dim == 0`.
    pub fn new(dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(Error::invalid_parameter(
                "HashingEmbedder::new: dim (must be ≥ 1)",
                0.0,
            ));
        }
        let mut id = [0u8; ID_CAPACITY];
        let mut id_len = 0;
        for &b in ID_PREFIX.as_bytes() {
            id[id_len] = b;
            id_len += 1;
        }
        let mut digits = [0u8; 20];
        let mut n = dim as u64;
        let mut count = 0;
        loop {
            digits[count] = b'0' + (n % 10) as u8;
            count += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in digits[..count].iter().rev() {
            id[id_len] = d;
            id_len += 1;
        }
        Ok(Self { dim, id, id_len })
    }
}

impl Embedder for HashingEmbedder {
    fn id(&self) -> &str {
        // The buffer holds ASCII written by `new`, so this never falls back.
        self.id
            .get(..self.id_len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("hash-v1")
    }

    fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `text`; see the [module documentation](self) for what is hashed.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `out.len() != dim()` (then
    /// `out` is untouched), [`ZeroVector`](ErrorKind::ZeroVector) for text without words.
    fn embed(&mut self, text: &str, out: &mut [f32]) -> Result<()> {
        pilot_core::check_len("HashingEmbedder::embed: out", out, self.dim)?;
        embed_into(text, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn id_spells_the_dimension() {
        assert_eq!(HashingEmbedder::new(256).unwrap().id(), "hash-v1:d=256");
        assert_eq!(HashingEmbedder::new(7).unwrap().id(), "hash-v1:d=7");
        let big = HashingEmbedder::new(usize::MAX).unwrap();
        assert!(
            big.id().starts_with("hash-v1:d=18446744073709551615")
                || cfg!(not(target_pointer_width = "64"))
        );
        assert_eq!(
            HashingEmbedder::new(0).unwrap_err().kind(),
            ErrorKind::InvalidParameter
        );
    }
}
