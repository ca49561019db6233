//! Fuzz-style property tests of the request parsers: no input makes them panic; malformed
//! JSON is a 400 and a bad feedback value a 422, each with a reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pilot_serve::http::{parse_chat, parse_feedback};
use proptest::prelude::*;
use serde_json::{Value, json};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|f| json!(f)),
        any::<i64>().prop_map(|i| json!(i)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("user")),
        Just(json!("pilot")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("model".to_string()),
                        Just("messages".to_string()),
                        Just("role".to_string()),
                        Just("content".to_string()),
                        Just("stream".to_string()),
                        Just("max_tokens".to_string()),
                        Just("request_id".to_string()),
                        Just("reward".to_string()),
                        Just("type".to_string()),
                        Just("text".to_string()),
                        ".{0,6}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_chat(&bytes);
        let _ = parse_feedback(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        if let Err(r) = parse_chat(&bytes) {
            prop_assert_eq!(r.status().as_u16(), 400);
        }
        if let Err(r) = parse_feedback(&bytes) {
            prop_assert_eq!(r.status().as_u16(), 422);
        }
    }

    #[test]
    fn the_input_bound_covers_every_byte(text in ".{0,200}", n in 1usize..5) {
        let msgs: Vec<Value> = (0..n).map(|_| json!({"role": "user", "content": text})).collect();
        let body = serde_json::to_vec(&json!({"model": "pilot", "messages": msgs})).unwrap();
        let req = parse_chat(&body).map_err(|_| TestCaseError::fail("refused")).unwrap();
        prop_assert!(req.input_tokens >= (text.len() * n) as u64);
    }
}

#[test]
fn malformed_json_is_a_400_with_the_reason() {
    let r = parse_chat(b"{\"model\": \"pilot\", ").err().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = parse_feedback(b"[1, 2").err().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = parse_feedback(br#"{"request_id": 1, "reward": 2}"#)
        .err()
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    let r = parse_chat(br#"{"model": "pilot", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}"#)
        .err()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let ok = parse_chat(br#"{"model": "pilot", "max_tokens": 7, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]}"#)
        .ok()
        .unwrap();
    assert_eq!(ok.text, "hi");
    assert_eq!(ok.max_output, 7);
}
