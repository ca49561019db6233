//! Fuzzing oracle of the parsers: arbitrary bytes as a chat completion or a feedback body. A
//! fuzz target is three lines:
//!
//! ```
//! # let data: &[u8] = b"\x00{\"model\":\"pilot\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
//! if let Err(why) = pilot_serve_parse::testkit::check_serve_parsers(data) {
//!     panic!("{why}");
//! }
//! ```

use crate::{MESSAGE_OVERHEAD, REQUEST_OVERHEAD, parse_chat, parse_feedback, text_bytes};

/// Byte 0 picks the parser (even: chat completion, odd: feedback); the rest is the body.
/// Checks: no panic; a refusal has a 400/422 status and a reason; a chat request's input
/// bound covers the overheads and every byte of its messages and is at least its routed text,
/// `max_output` is positive, and the body it keeps parses again to the same request; a
/// feedback's reward is in [0, 1].
///
/// # Errors
/// A message naming the broken property.
pub fn check_serve_parsers(data: &[u8]) -> Result<(), String> {
    let Some((&which, body)) = data.split_first() else {
        return Ok(());
    };
    if which % 2 == 0 {
        match parse_chat(body) {
            Ok(req) => {
                let messages = req
                    .body
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .ok_or("an accepted request has no messages array")?;
                let floor = REQUEST_OVERHEAD
                    + MESSAGE_OVERHEAD * messages.len() as u64
                    + text_bytes(&req.body["messages"]);
                if req.input_tokens < floor {
                    return Err(format!(
                        "input bound {} below overheads + message bytes {floor}",
                        req.input_tokens
                    ));
                }
                if (req.text.len() as u64) > req.input_tokens {
                    return Err(format!(
                        "routed text of {} bytes above the input bound {}",
                        req.text.len(),
                        req.input_tokens
                    ));
                }
                if req.max_output == 0 {
                    return Err("max_output 0 accepted".into());
                }
                let again = serde_json::to_vec(&req.body).map_err(|e| e.to_string())?;
                let back = parse_chat(&again)
                    .map_err(|e| format!("the kept body does not parse again: {e}"))?;
                if (
                    back.model,
                    back.text,
                    back.input_tokens,
                    back.max_output,
                    back.stream,
                ) != (
                    req.model,
                    req.text,
                    req.input_tokens,
                    req.max_output,
                    req.stream,
                ) {
                    return Err("the kept body parses to another request".into());
                }
            }
            Err(e) => {
                if e.status != 400 || e.message.is_empty() {
                    return Err(format!("chat refusal without a 400 and a reason: {e}"));
                }
            }
        }
    } else {
        match parse_feedback(body) {
            Ok((_, reward)) => {
                if !(0.0..=1.0).contains(&reward) {
                    return Err(format!("reward {reward} accepted"));
                }
            }
            Err(e) => {
                if !(e.status == 400 || e.status == 422) || e.message.is_empty() {
                    return Err(format!(
                        "feedback refusal without 400/422 and a reason: {e}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Valid inputs to start the corpus from: chat bodies (plain, parts, streaming, limits, tools)
/// and feedback bodies.
pub fn serve_parser_seeds() -> Vec<Vec<u8>> {
    let chats = [
        r#"{"model":"pilot","messages":[{"role":"user","content":"Which planet is largest?"}]}"#,
        r#"{"model":"gpt-4","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}],"stream":true,"stream_options":{"include_usage":true}}"#,
        r#"{"model":"pilot","messages":[{"role":"user","content":null}],"max_tokens":64,"max_completion_tokens":32,"tools":[{"type":"function","function":{"name":"f","parameters":{"x":1.5e3}}}]}"#,
    ];
    let feedbacks = [
        r#"{"request_id":1234567890,"reward":1}"#,
        r#"{"request_id":"42","reward":0.25}"#,
    ];
    chats
        .iter()
        .map(|b| [&[0u8][..], b.as_bytes()].concat())
        .chain(
            feedbacks
                .iter()
                .map(|b| [&[1u8][..], b.as_bytes()].concat()),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_pass() {
        for seed in serve_parser_seeds() {
            check_serve_parsers(&seed).unwrap();
        }
    }
}
