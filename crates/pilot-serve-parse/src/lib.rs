//! The request parsers of `pilot serve`: a chat completion body (what the proxy routes on and
//! the bound on its input tokens) and a feedback body. Apart from the server so that they can be
//! fuzzed without its HTTP and SQLite dependencies; no input makes them panic.

#[cfg(feature = "testkit")]
pub mod testkit;

use serde_json::Value;

/// Why a body was refused: the HTTP status, an OpenAI-style error code and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 400 (malformed) or 422 (a bad value).
    pub status: u16,
    /// `invalid_json`, `invalid_request` or `invalid_value`.
    pub kind: &'static str,
    /// What is wrong, for the client.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.kind, self.message)
    }
}

impl std::error::Error for ParseError {}

fn invalid_request(message: String) -> ParseError {
    ParseError {
        status: 400,
        kind: "invalid_request",
        message,
    }
}

fn invalid_value(message: &str) -> ParseError {
    ParseError {
        status: 422,
        kind: "invalid_value",
        message: message.to_string(),
    }
}

/// Parses JSON, or says why not (400 `invalid_json`).
///
/// # Errors
/// The body is not valid JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError {
        status: 400,
        kind: "invalid_json",
        message: format!("the body is not valid JSON: {e}"),
    })
}

/// What the proxy needs from a chat completion request.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    /// The parsed body.
    pub body: Value,
    /// `model`.
    pub model: String,
    /// `stream`.
    pub stream: bool,
    /// Whether the client asked for usage in the stream.
    pub wants_stream_usage: bool,
    /// The text routed on (the last user message).
    pub text: String,
    /// A bound on the input tokens: UTF-8 bytes of the prompt parts plus message overhead.
    pub input_tokens: u64,
    /// `max_completion_tokens` / `max_tokens` asked (`u64::MAX`: none).
    pub max_output: u64,
    /// Whether the client used `max_completion_tokens`.
    pub uses_completion_field: bool,
}

/// Tokens added per message by chat templates (role markers, separators): a generous bound.
pub const MESSAGE_OVERHEAD: u64 = 8;
/// Tokens added per request (the assistant's reply prefix).
pub const REQUEST_OVERHEAD: u64 = 16;

/// UTF-8 bytes of every string, key and number in `v` (a bound on the tokens they become).
pub fn text_bytes(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() as u64 + text_bytes(v)).sum(),
        Value::Number(n) => n.to_string().len() as u64,
        Value::Bool(_) => 5,
        Value::Null => 0,
    }
}

fn content_text(content: &Value, at: usize) -> Result<String, String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(t);
                    }
                    _ => {
                        return Err(format!(
                            "messages[{at}].content[{j}]: only text parts are served (the budget hold bounds tokens by bytes)"
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(format!(
            "messages[{at}].content: expected a string, null or an array of text parts"
        )),
    }
}

/// Parses and checks a chat completion body.
///
/// # Errors
/// 400 with the reason for malformed JSON or a missing/mistyped field.
pub fn parse_chat(raw: &[u8]) -> Result<ChatRequest, ParseError> {
    let body = parse_json(raw)?;
    let bad = invalid_request;
    let obj = body
        .as_object()
        .ok_or_else(|| bad("the body must be a JSON object".into()))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`model` (a string) is required".into()))?
        .to_string();
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` (an array) is required".into()))?;
    if messages.is_empty() {
        return Err(bad("`messages` must not be empty".into()));
    }
    let mut last_user = None;
    let mut all = String::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("messages[{i}].role (a string) is required")))?;
        let text = content_text(m.get("content").unwrap_or(&Value::Null), i).map_err(bad)?;
        if role == "user" {
            last_user = Some(text.clone());
        }
        all.push_str(&text);
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("`stream` must be a boolean".into())),
    };
    let wants_stream_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut max_output = u64::MAX;
    let mut uses_completion_field = false;
    for field in ["max_tokens", "max_completion_tokens"] {
        match obj.get(field) {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v
                    .as_u64()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(format!("`{field}` must be a positive integer")))?;
                max_output = max_output.min(n);
                if field == "max_completion_tokens" {
                    uses_completion_field = true;
                }
            }
        }
    }
    let mut input_tokens = REQUEST_OVERHEAD + MESSAGE_OVERHEAD * messages.len() as u64;
    for field in [
        "messages",
        "tools",
        "functions",
        "tool_choice",
        "response_format",
    ] {
        if let Some(v) = obj.get(field) {
            input_tokens += text_bytes(v);
        }
    }
    Ok(ChatRequest {
        text: last_user.unwrap_or(all),
        body,
        model,
        stream,
        wants_stream_usage,
        input_tokens,
        max_output,
        uses_completion_field,
    })
}

/// Parses a feedback body: `{request_id, reward}` (the id an integer or a string of one, the
/// reward in [0, 1]).
///
/// # Errors
/// 400 for malformed JSON, 422 for a missing or bad field.
pub fn parse_feedback(raw: &[u8]) -> Result<(u64, f32), ParseError> {
    let v = parse_json(raw)?;
    let id = match v.get("request_id") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        invalid_value("`request_id` must be the x-pilot-request-id of a request (an integer)")
    })?;
    let reward = v
        .get("reward")
        .and_then(Value::as_f64)
        .ok_or_else(|| invalid_value("`reward` must be a number in [0, 1]"))?;
    if !(0.0..=1.0).contains(&reward) {
        return Err(invalid_value("`reward` must be a number in [0, 1]"));
    }
    Ok((id, reward as f32))
}
