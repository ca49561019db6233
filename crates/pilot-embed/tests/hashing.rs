//! The hashing embedder: pinned outputs (the same bits on every platform), invariances, unit
//! length, and errors instead of NaN vectors.
#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is the failure report.

use pilot_core::{Embedder, ErrorKind};
use pilot_embed::hashing::{self, HashingEmbedder};
use proptest::prelude::*;

fn embed(text: &str) -> [f32; 64] {
    hashing::embed::<64>(text).unwrap()
}

#[test]
fn trait_and_free_function_agree() {
    let mut e = HashingEmbedder::new(64).unwrap();
    assert_eq!(e.dim(), 64);
    assert_eq!(e.id(), "hash-v1:d=64");
    let mut out = [0.0f32; 64];
    e.embed("Route this query", &mut out).unwrap();
    assert_eq!(out, embed("Route this query"));
}

#[test]
fn wrong_buffer_is_rejected_and_untouched() {
    let mut e = HashingEmbedder::new(64).unwrap();
    let mut out = [7.0f32; 63];
    let err = e.embed("hello", &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DimensionMismatch);
    assert_eq!(out, [7.0; 63]);
    assert_eq!(
        hashing::embed_into("hello", &mut []).unwrap_err().kind(),
        ErrorKind::InvalidParameter
    );
}

#[test]
fn text_without_words_is_an_error_not_nan() {
    for text in ["", " ", "\t\n  ", "...!?", "— – ·"] {
        let err = hashing::embed::<16>(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ZeroVector, "{text:?}");
    }
}

#[test]
fn case_punctuation_and_spacing_do_not_matter() {
    assert_eq!(embed("Hello, World!"), embed("hello world"));
    assert_eq!(embed("  hello\n\tworld  "), embed("hello world"));
    // Unicode-aware lowercase (no allocator needed).
    assert_eq!(embed("ÉCOLE Straße"), embed("école straße"));
    assert_eq!(embed("ΣΟΦΙΑ"), embed("σοφια"));
}

#[test]
fn words_form_a_bag() {
    assert_eq!(embed("cheap fast model"), embed("model fast cheap"));
    assert_ne!(embed("cheap fast model"), embed("cheap fast models"));
}

#[test]
fn shared_spelling_means_similar_vectors() {
    let cos = |a: &str, b: &str| pilot_embed::cosine(&embed(a), &embed(b)).unwrap();
    let near = cos("routing queries to models", "route a query to a model");
    let far = cos(
        "routing queries to models",
        "photosynthesis in green plants",
    );
    assert!(near > far + 0.2, "near {near}, far {far}");
}

/// Exact outputs, pinned: any change to tokenising, hashing or normalising shows up here, and
/// the no-std smoke binary checks the same numbers on a Cortex-M4.
#[test]
fn outputs_are_pinned() {
    // 12 features ("hello", "world", 5 + 5 three-grams) with signed counts; ‖counts‖² = 14.
    let v = hashing::embed::<16>("hello world").unwrap();
    let counts = [0, -1, -1, 0, -1, 0, 1, -1, 0, 1, 0, 0, -2, 0, 0, -2];
    let bits: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
    let unit = 0x3e88_d677u32; // 1/√14 as f32
    let want: Vec<u32> = counts
        .iter()
        .map(|&c: &i32| match c {
            0 => 0,
            1 => unit,
            -1 => unit | 0x8000_0000,
            -2 => 0xbf08_d677,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(bits, want);
    assert_eq!(f32::from_bits(unit), 1.0 / 14.0f32.sqrt());

    // Unicode lowercase; 15 features whose signed counts have ‖counts‖² = 9.
    let u = hashing::embed::<8>("Straße CAFÉ 42").unwrap();
    let bits: Vec<u32> = u.iter().map(|x| x.to_bits()).collect();
    let third = 0x3eaa_aaabu32; // 1/3 as f32
    let neg = 0x8000_0000u32;
    let want = [
        third,
        third,
        third | neg,
        0,
        0xbf2a_aaab,
        third,
        third | neg,
        0,
    ];
    assert_eq!(bits, want);
}

#[test]
fn cancelled_signs_fall_back_to_counts() {
    // At D = 4 the word "1" and its gram "<1>" share a bucket with opposite signs.
    let v = hashing::embed::<4>("1").unwrap();
    assert_eq!(v.iter().filter(|&&x| x == 1.0).count(), 1, "{v:?}");
    assert_eq!(v.iter().filter(|&&x| x == 0.0).count(), 3, "{v:?}");
}

proptest! {
    #[test]
    fn any_text_gives_a_unit_vector_or_zero_vector_error(text in ".{0,80}", d in 1usize..300) {
        let mut out = vec![0.0f32; d];
        match hashing::embed_into(&text, &mut out) {
            Ok(()) => {
                prop_assert!(out.iter().all(|v| v.is_finite()));
                let len: f64 = out.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                prop_assert!((len - 1.0).abs() < 1e-5, "squared length {len}");
            }
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::ZeroVector);
                prop_assert!(!text.chars().any(char::is_alphanumeric));
                prop_assert!(out.iter().all(|&v| v == 0.0));
            }
        }
    }

    #[test]
    fn deterministic_and_ascii_case_blind(text in "[a-zA-Z0-9 ,.]{1,60}") {
        let mut a = [0.0f32; 32];
        let mut b = [0.0f32; 32];
        let ra = hashing::embed_into(&text, &mut a);
        let rb = hashing::embed_into(&text.to_ascii_uppercase(), &mut b);
        prop_assert_eq!(ra.is_ok(), rb.is_ok());
        prop_assert_eq!(a, b);
    }
}
