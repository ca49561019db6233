//! The HTTP surface of `pilot serve`: OpenAI-compatible chat completions (routed or pinned,
//! streaming or not), feedback, models, state, metrics, health and the admin endpoints.
// Checks return the error answer itself (built once per refused request); boxing it would
// only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router as Http;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use pilot_core::ErrorKind;
use pilot_router::Price;
use serde_json::{Value, json};

use crate::config::UpstreamConfig;
use crate::engine::{Engine, OpError, Routed};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The upstream HTTP client.
    pub client: reqwest::Client,
}

/// The server's routes.
pub fn app(engine: Arc<Engine>) -> anyhow::Result<Http> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(512)
        .build()?;
    let limit = engine.config.server.max_body_bytes;
    let state = AppState { engine, client };
    Ok(Http::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/feedback", post(feedback))
        .route("/v1/models", get(models))
        .route("/v1/router/state", get(router_state))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/admin/llms", post(admin_add))
        .route("/admin/llms/enable", post(admin_enable))
        .route("/admin/llms/disable", post(admin_disable))
        .route("/admin/llms/price", post(admin_price))
        .route("/admin/budget", post(admin_budget))
        .route("/admin/budget/new-period", post(admin_new_period))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state))
}

/// An OpenAI-style error answer.
pub fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": kind, "code": kind}});
    (status, axum::Json(body)).into_response()
}

fn op_error(e: &OpError) -> Response {
    match e {
        OpError::Router(err) => {
            let (status, kind) = match err.kind() {
                ErrorKind::UnknownRequest => (StatusCode::NOT_FOUND, "unknown_request"),
                ErrorKind::Duplicate => (StatusCode::CONFLICT, "duplicate"),
                ErrorKind::OutOfRange | ErrorKind::NonFinite | ErrorKind::InvalidParameter => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value")
                }
                ErrorKind::UnknownArm => (StatusCode::NOT_FOUND, "unknown_llm"),
                ErrorKind::OverBudget => (StatusCode::CONFLICT, "over_budget"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "router_error"),
            };
            error(status, kind, err.to_string())
        }
        OpError::Store(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "state_unavailable",
            e.to_string(),
        ),
        OpError::Bad(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value", m.clone()),
    }
}

fn body_error(r: BytesRejection) -> Response {
    let status = r.status();
    let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "body_too_large"
    } else {
        "bad_body"
    };
    error(status, kind, r.body_text())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn same(a: &str, b: &str) -> bool {
    // Length leaks; content is compared without an early exit.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn check_client(st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let keys = &st.engine.config.server.client_keys;
    if keys.is_empty() {
        return Ok(());
    }
    match bearer(headers) {
        Some(k) if keys.iter().any(|x| same(x, k)) => Ok(()),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "a client key is needed: Authorization: Bearer <key>",
        )),
    }
}

fn check_admin(st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let keys = &st.engine.config.server.admin_keys;
    if keys.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            "admin_disabled",
            "the admin endpoints are off (no server.admin_keys configured)",
        ));
    }
    match bearer(headers) {
        Some(k) if keys.iter().any(|x| same(x, k)) => Ok(()),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "an admin key is needed: Authorization: Bearer <key>",
        )),
    }
}

/// The answer to a refused body.
pub fn parse_error(e: pilot_serve_parse::ParseError) -> Response {
    error(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
        e.kind,
        e.message,
    )
}

fn parse_json(body: &[u8]) -> Result<Value, Response> {
    pilot_serve_parse::parse_json(body).map_err(parse_error)
}

pub use pilot_serve_parse::{ChatRequest, MESSAGE_OVERHEAD, REQUEST_OVERHEAD};

/// Parses and checks a chat completion body ([`pilot_serve_parse::parse_chat`]).
///
/// # Errors
/// 400 with the reason for malformed JSON or a missing/mistyped field.
pub fn parse_chat(raw: &[u8]) -> Result<ChatRequest, Response> {
    pilot_serve_parse::parse_chat(raw).map_err(parse_error)
}

fn pilot_headers(resp: &mut Response, id: u64, routed: &Routed) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        h.insert("x-pilot-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&routed.name) {
        h.insert("x-pilot-model", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{:.6}", routed.propensity)) {
        h.insert("x-pilot-propensity", v);
    }
}

/// The cost of a `usage` object at `price`; `None` when it is missing or malformed.
pub fn usage_cost(usage: Option<&Value>, price: &Price) -> Option<f64> {
    let u = usage?;
    let p = u.get("prompt_tokens")?.as_u64()?;
    let c = u.get("completion_tokens")?.as_u64()?;
    Some(price.cost(p, c))
}

enum Attempt {
    /// An answer for the client (success or a client error passed through).
    Done(Response),
    /// The upstream failed before costing anything: try another.
    Retry(String),
}

async fn chat(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let t0 = Instant::now();
    st.engine.metrics.requests.fetch_add(1, Ordering::Relaxed);
    if let Err(r) = check_client(&st, &headers) {
        return r;
    }
    let raw = match body {
        Ok(b) => b,
        Err(r) => return body_error(r),
    };
    let req = match parse_chat(&raw) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Arms left out after failures (shorter than the pool: the rest are in).
    let mut exclude: Vec<bool> = Vec::new();
    let pinned = req.model != "pilot";
    if pinned {
        let pool = st.engine.pool();
        match pool.iter().position(|(n, _)| *n == req.model) {
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "model_not_found",
                    format!(
                        "model {:?} is neither \"pilot\" nor an LLM of the pool (GET /v1/models)",
                        req.model
                    ),
                );
            }
            Some(i) if !pool[i].1 => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "model_disabled",
                    format!("model {:?} is disabled", req.model),
                );
            }
            Some(_) => {}
        }
    }
    let base = match st.engine.embed(&req.text).await {
        Ok(v) => v,
        Err(why) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("the request's text cannot be embedded: {why}"),
            );
        }
    };
    let id = st.engine.next_request_id();
    let attempts = if pinned {
        1
    } else {
        st.engine.config.server.max_attempts
    };
    let mut upstream_time = Duration::ZERO;
    let mut last_failure = String::new();
    for attempt in 0..attempts {
        let routed = match st
            .engine
            .route(
                id,
                &base,
                req.input_tokens,
                req.max_output,
                &exclude,
                pinned.then_some(req.model.as_str()),
            )
            .await
        {
            Ok(Some(r)) => r,
            Ok(None) if attempt == 0 => {
                st.engine
                    .metrics
                    .budget_exhausted
                    .fetch_add(1, Ordering::Relaxed);
                return error(
                    StatusCode::PAYMENT_REQUIRED,
                    "budget_exhausted",
                    "no LLM fits what is left of the budget for this request (its worst case: input bytes and max_tokens at the LLM's prices)",
                );
            }
            Ok(None) => break,
            Err(e) => return op_error(&e),
        };
        let t_up = Instant::now();
        let outcome = call(&st, &req, id, &routed, t0, &mut upstream_time).await;
        match outcome {
            Attempt::Done(resp) => return resp,
            Attempt::Retry(why) => {
                if let Err(e) = st.engine.release(id).await {
                    return op_error(&e);
                }
                last_failure = format!("{}: {why}", routed.name);
                if exclude.len() <= routed.arm {
                    exclude.resize(routed.arm + 1, false);
                }
                exclude[routed.arm] = true;
                upstream_time += t_up.elapsed();
            }
        }
    }
    error(
        StatusCode::BAD_GATEWAY,
        "upstream_failed",
        format!(
            "every LLM tried failed or nothing else fits the budget; last failure: {last_failure}"
        ),
    )
}

fn record_overhead(st: &AppState, t0: Instant, upstream: Duration) {
    let over = t0.elapsed().saturating_sub(upstream);
    st.engine.metrics.proxy.observe(over.as_secs_f64());
    st.engine.metrics.proxy_ring.push(over.as_nanos() as u64);
}

async fn call(
    st: &AppState,
    req: &ChatRequest,
    id: u64,
    routed: &Routed,
    t0: Instant,
    upstream_time: &mut Duration,
) -> Attempt {
    let engine = &st.engine;
    let Some(up) = engine.upstream(&routed.name) else {
        return Attempt::Retry("no upstream configured".into());
    };
    let mut body = req.body.clone();
    if let Some(o) = body.as_object_mut() {
        o.insert("model".into(), Value::String(up.spec.model_id().into()));
        let field = if req.uses_completion_field {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        o.remove("max_tokens");
        o.remove("max_completion_tokens");
        o.insert(field.into(), json!(routed.max_output));
        if req.stream {
            let so = o.entry("stream_options").or_insert_with(|| json!({}));
            if let Some(so) = so.as_object_mut() {
                so.insert("include_usage".into(), Value::Bool(true));
            }
        }
    }
    let url = format!(
        "{}/chat/completions",
        up.spec.base_url.trim_end_matches('/')
    );
    let timeout = Duration::from_secs_f64(engine.config.server.upstream_timeout_secs);
    let mut rb = st
        .client
        .post(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&body).unwrap_or_default());
    if let Some(k) = &up.api_key {
        rb = rb.bearer_auth(k);
    }
    let t_up = Instant::now();
    let resp = match tokio::time::timeout(timeout, rb.send()).await {
        Err(_) => {
            engine.metrics.upstream_error(&routed.name, "timeout");
            return Attempt::Retry("timed out".into());
        }
        Ok(Err(e)) => {
            let kind = if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            engine.metrics.upstream_error(&routed.name, kind);
            return Attempt::Retry(format!("{kind} error"));
        }
        Ok(Ok(r)) => r,
    };
    let status = resp.status();
    if status.as_u16() == 429 || status.is_server_error() {
        engine.metrics.upstream_error(
            &routed.name,
            if status.as_u16() == 429 { "429" } else { "5xx" },
        );
        return Attempt::Retry(format!("status {status}"));
    }
    if !status.is_success() {
        // The client's own mistake (400, 401, 404 …): nothing was generated; pass it on.
        engine.metrics.upstream_error(&routed.name, "4xx");
        let bytes = tokio::time::timeout(timeout, resp.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if let Err(e) = engine.release(id).await {
            return Attempt::Done(op_error(&e));
        }
        *upstream_time += t_up.elapsed();
        record_overhead(st, t0, *upstream_time);
        let mut r = Response::new(Body::from(bytes));
        *r.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        pilot_headers(&mut r, id, routed);
        return Attempt::Done(r);
    }
    if req.stream {
        *upstream_time += t_up.elapsed();
        record_overhead(st, t0, *upstream_time);
        return Attempt::Done(stream_response(st, req, id, routed, resp, timeout));
    }
    let bytes = match tokio::time::timeout(timeout, resp.bytes()).await {
        Ok(Ok(b)) => b,
        _ => {
            // Headers came, the body did not: the call may have cost; charge the hold.
            engine.metrics.upstream_error(&routed.name, "body");
            *upstream_time += t_up.elapsed();
            return match engine.settle_hold(id, routed.hold_units).await {
                Ok(()) => Attempt::Done(error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_failed",
                    format!("{}: the answer broke off", routed.name),
                )),
                Err(e) => Attempt::Done(op_error(&e)),
            };
        }
    };
    *upstream_time += t_up.elapsed();
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => {
            engine.metrics.upstream_error(&routed.name, "bad_json");
            return match engine.settle_hold(id, routed.hold_units).await {
                Ok(()) => Attempt::Done(error(
                    StatusCode::BAD_GATEWAY,
                    "upstream_failed",
                    format!("{}: the answer is not JSON", routed.name),
                )),
                Err(e) => Attempt::Done(op_error(&e)),
            };
        }
    };
    let settled = match usage_cost(value.get("usage"), &routed.price) {
        // Not waited for: should the process die before it is stored, the hold stays open
        // and is charged in full (conservative); the answer does not depend on it.
        Some(cost) => engine.settle_nowait(id, cost).map(|_| ()),
        None => engine
            .settle_nowait(id, engine.hold_cost(routed.hold_units))
            .map(|_| ()),
    };
    if let Err(e) = settled {
        return Attempt::Done(op_error(&e));
    }
    if let Some(o) = value.as_object_mut() {
        o.insert("model".into(), Value::String(routed.name.clone()));
    }
    let out = serde_json::to_vec(&value).unwrap_or_default();
    record_overhead(st, t0, *upstream_time);
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    pilot_headers(&mut r, id, routed);
    Attempt::Done(r)
}

/// Settles a streamed call when the stream ends or is dropped: from the `usage` seen, else
/// the whole hold.
struct StreamSettle {
    engine: Arc<Engine>,
    id: u64,
    hold_units: u64,
    price: Price,
    usage: Option<Value>,
}

impl Drop for StreamSettle {
    fn drop(&mut self) {
        let r = match usage_cost(self.usage.as_ref(), &self.price) {
            Some(cost) => self.engine.settle_nowait(self.id, cost),
            None => self
                .engine
                .settle_nowait(self.id, self.engine.hold_cost(self.hold_units)),
        };
        if let Err(e) = r {
            eprintln!("pilot serve: settling streamed request {}: {e}", self.id);
        }
    }
}

struct StreamState {
    upstream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    pending: Vec<u8>,
    settle: StreamSettle,
    name: String,
    keep_usage_chunk: bool,
    idle: Duration,
    done: bool,
}

impl StreamState {
    /// Rewrites complete SSE lines: `model` becomes the chosen LLM, `usage` is noted, and the
    /// usage-only chunk the proxy asked for is dropped when the client did not ask for it.
    fn lines(&mut self, flush: bool) -> Bytes {
        let mut out = Vec::with_capacity(self.pending.len() + 64);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = self.pending[start..start + pos].to_vec();
            self.rewrite(&line, &mut out);
            out.push(b'\n');
            start += pos + 1;
        }
        let rest = self.pending.split_off(start);
        self.pending = rest;
        if flush && !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.rewrite(&line, &mut out);
        }
        Bytes::from(out)
    }

    fn rewrite(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let text = std::str::from_utf8(line).unwrap_or("");
        let trimmed = text.trim_end_matches('\r');
        let Some(data) = trimmed.strip_prefix("data:") else {
            out.extend_from_slice(line);
            return;
        };
        let data = data.trim_start();
        if data == "[DONE]" {
            out.extend_from_slice(line);
            return;
        }
        match serde_json::from_str::<Value>(data) {
            Ok(mut v) => {
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    self.settle.usage = Some(u.clone());
                }
                let usage_only = v
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
                    && self.settle.usage.is_some();
                if usage_only && !self.keep_usage_chunk {
                    return;
                }
                if !self.keep_usage_chunk
                    && let Some(o) = v.as_object_mut()
                {
                    o.remove("usage");
                }
                if let Some(o) = v.as_object_mut() {
                    o.insert("model".into(), Value::String(self.name.clone()));
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
            }
            Err(_) => out.extend_from_slice(line),
        }
    }
}

fn stream_response(
    st: &AppState,
    req: &ChatRequest,
    id: u64,
    routed: &Routed,
    resp: reqwest::Response,
    idle: Duration,
) -> Response {
    let state = StreamState {
        upstream: Box::pin(resp.bytes_stream()),
        pending: Vec::new(),
        settle: StreamSettle {
            engine: st.engine.clone(),
            id,
            hold_units: routed.hold_units,
            price: routed.price,
            usage: None,
        },
        name: routed.name.clone(),
        keep_usage_chunk: req.wants_stream_usage,
        idle,
        done: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if s.done {
                return None;
            }
            match tokio::time::timeout(s.idle, s.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    s.pending.extend_from_slice(&chunk);
                    let out = s.lines(false);
                    if !out.is_empty() {
                        return Some((Ok::<Bytes, std::io::Error>(out), s));
                    }
                }
                Ok(None) => {
                    s.done = true;
                    let out = s.lines(true);
                    if !out.is_empty() {
                        return Some((Ok(out), s));
                    }
                    return None;
                }
                Ok(Some(Err(e))) => {
                    s.done = true;
                    s.settle.engine.metrics.upstream_error(&s.name, "stream");
                    return Some((Err(std::io::Error::other(e.to_string())), s));
                }
                Err(_) => {
                    s.done = true;
                    s.settle.engine.metrics.upstream_error(&s.name, "timeout");
                    return Some((
                        Err(std::io::Error::other("upstream stream idle timeout")),
                        s,
                    ));
                }
            }
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    pilot_headers(&mut r, id, routed);
    r
}

/// Parses a feedback body: `{request_id, reward}` ([`pilot_serve_parse::parse_feedback`]).
///
/// # Errors
/// 400 for malformed JSON, 422 for a missing or bad field.
pub fn parse_feedback(raw: &[u8]) -> Result<(u64, f32), Response> {
    pilot_serve_parse::parse_feedback(raw).map_err(parse_error)
}

async fn feedback(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(r) = check_client(&st, &headers) {
        return r;
    }
    let raw = match body {
        Ok(b) => b,
        Err(r) => return body_error(r),
    };
    let (id, reward) = match parse_feedback(&raw) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match st.engine.feedback(id, reward).await {
        Ok(()) => axum::Json(json!({"ok": true, "request_id": id})).into_response(),
        Err(e) => op_error(&e),
    }
}

async fn models(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = check_client(&st, &headers) {
        return r;
    }
    let mut data =
        vec![json!({"id": "pilot", "object": "model", "created": 0, "owned_by": "pilot"})];
    for (name, enabled) in st.engine.pool() {
        if enabled {
            data.push(json!({"id": name, "object": "model", "created": 0, "owned_by": "upstream"}));
        }
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn router_state(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = check_client(&st, &headers) {
        return r;
    }
    axum::Json(st.engine.state_json()).into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    let mut r = Response::new(Body::from(st.engine.metrics_text()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

fn admin_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, Response> {
    check_admin(st, headers)?;
    let raw = body.map_err(body_error)?;
    parse_json(&raw)
}

fn done(r: Result<(), OpError>) -> Response {
    match r {
        Ok(()) => axum::Json(json!({"ok": true})).into_response(),
        Err(e) => op_error(&e),
    }
}

fn name_of(v: &Value) -> Result<String, Response> {
    v.get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                "`name` (a string) is required",
            )
        })
}

async fn admin_add(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let v = match admin_body(&st, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let spec: UpstreamConfig = match serde_json::from_value(v) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                format!(
                    "an LLM needs name, base_url, input_per_mtok, output_per_mtok, max_output_tokens (api_key_env, model optional): {e}"
                ),
            );
        }
    };
    match st.engine.add_llm(spec).await {
        Ok(arm) => axum::Json(json!({"ok": true, "arm": arm})).into_response(),
        Err(e) => op_error(&e),
    }
}

async fn admin_enable(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    set_enabled(&st, &headers, body, true).await
}

async fn admin_disable(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    set_enabled(&st, &headers, body, false).await
}

/// Enables or disables the LLM the (authenticated) body names.
async fn set_enabled(
    st: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    enabled: bool,
) -> Response {
    let name = match admin_body(st, headers, body).and_then(|v| name_of(&v)) {
        Ok(n) => n,
        Err(r) => return r,
    };
    done(st.engine.set_enabled(&name, enabled).await)
}

async fn admin_price(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let v = match admin_body(&st, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let name = match name_of(&v) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let Some(old) = st.engine.price(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_llm",
            format!("no LLM {name:?} in the pool"),
        );
    };
    let f = |k: &str, d: f64| v.get(k).map_or(Some(d), Value::as_f64);
    let (Some(i), Some(o)) = (
        f("input_per_mtok", old.input_per_mtok),
        f("output_per_mtok", old.output_per_mtok),
    ) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "prices must be numbers",
        );
    };
    let m = match v.get("max_output_tokens") {
        None => old.max_output_tokens,
        Some(x) => match x.as_u64().filter(|&n| n > 0) {
            Some(n) => n,
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_value",
                    "max_output_tokens must be a positive integer",
                );
            }
        },
    };
    done(
        st.engine
            .set_price(
                &name,
                Price {
                    input_per_mtok: i,
                    output_per_mtok: o,
                    max_output_tokens: m,
                },
            )
            .await,
    )
}

async fn admin_budget(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let v = match admin_body(&st, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match v.get("usd").and_then(Value::as_f64) {
        Some(usd) => done(st.engine.set_budget(usd).await),
        None => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            "`usd` (a number) is required",
        ),
    }
}

async fn admin_new_period(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let v = match admin_body(&st, &headers, body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let usd = match v.get("usd") {
        None | Some(Value::Null) => None,
        Some(x) => match x.as_f64() {
            Some(u) => Some(u),
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_value",
                    "`usd` must be a number",
                );
            }
        },
    };
    done(st.engine.new_period(usd).await)
}
