//! Counters and histograms of the server, written as Prometheus text, plus a ring of recent
//! overhead samples for exact percentiles in `/v1/router/state`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these bucket bounds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Adds one observation (seconds).
    pub fn observe(&self, secs: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if secs <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_ns
            .fetch_add((secs.max(0.0) * 1e9) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

const OVERHEAD: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05,
];
const EMBED: &[f64] = &[
    0.000_025, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
const DELAY: &[f64] = &[0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 86400.0];

/// The last `RING` samples of a duration, for percentiles.
pub struct Ring {
    samples: Mutex<(Vec<u32>, usize)>,
}

const RING: usize = 1 << 17;

impl Ring {
    fn new() -> Self {
        Self {
            samples: Mutex::new((Vec::with_capacity(RING), 0)),
        }
    }

    /// Adds a sample in nanoseconds.
    pub fn push(&self, ns: u64) {
        if let Ok(mut g) = self.samples.lock() {
            let v = u32::try_from(ns).unwrap_or(u32::MAX);
            let (buf, next) = &mut *g;
            if buf.len() < RING {
                buf.push(v);
            } else {
                buf[*next] = v;
                *next = (*next + 1) % RING;
            }
        }
    }

    /// (p50, p99, max) in microseconds and the sample count.
    pub fn percentiles(&self) -> (f64, f64, f64, usize) {
        let mut v = match self.samples.lock() {
            Ok(g) => g.0.clone(),
            Err(_) => return (0.0, 0.0, 0.0, 0),
        };
        if v.is_empty() {
            return (0.0, 0.0, 0.0, 0);
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize] as f64 / 1e3;
        (at(0.5), at(0.99), at(1.0), v.len())
    }

    /// Forgets every sample.
    pub fn clear(&self) {
        if let Ok(mut g) = self.samples.lock() {
            g.0.clear();
            g.1 = 0;
        }
    }
}

/// Everything `/metrics` shows besides the router's own counts.
pub struct Metrics {
    /// Time in `Router::route` (scoring, budget, draw; the text is embedded before).
    pub route: Histogram,
    /// Time the proxy spends on a request outside the upstream call (parsing, routing,
    /// durable writes, forwarding).
    pub proxy: Histogram,
    /// Delay from decision to feedback.
    pub feedback_delay: Histogram,
    /// Time to embed a request's text (queueing for a batch included).
    pub embed: Histogram,
    /// Recent embedding times.
    pub embed_ring: Ring,
    /// Recent route times.
    pub route_ring: Ring,
    /// Recent waits for events to be stored (group commit), per operation.
    pub commit_ring: Ring,
    /// Recent proxy overheads.
    pub proxy_ring: Ring,
    /// Upstream errors by (LLM, kind).
    pub upstream_errors: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Requests refused because nothing fit the budget.
    pub budget_exhausted: AtomicU64,
    /// Settlements that cost more than their hold.
    pub overruns: AtomicU64,
    /// Calls settled without a `usage` (charged their hold).
    pub missing_usage: AtomicU64,
    /// Feedbacks accepted.
    pub feedbacks: AtomicU64,
    /// Requests answered (any status) on `/v1/chat/completions`.
    pub requests: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self {
            route: Histogram::new(OVERHEAD),
            proxy: Histogram::new(OVERHEAD),
            feedback_delay: Histogram::new(DELAY),
            embed: Histogram::new(EMBED),
            embed_ring: Ring::new(),
            route_ring: Ring::new(),
            commit_ring: Ring::new(),
            proxy_ring: Ring::new(),
            upstream_errors: Mutex::new(BTreeMap::new()),
            budget_exhausted: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            missing_usage: AtomicU64::new(0),
            feedbacks: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Counts an upstream error.
    pub fn upstream_error(&self, llm: &str, kind: &'static str) {
        if let Ok(mut m) = self.upstream_errors.lock() {
            *m.entry((llm.to_string(), kind)).or_insert(0) += 1;
        }
    }

    /// Writes this server's own metrics.
    pub fn write(&self, out: &mut String) {
        self.route.write(
            out,
            "pilot_routing_overhead_seconds",
            "Time to decide (score, budget, draw; embedding apart)",
        );
        self.embed.write(
            out,
            "pilot_embedding_seconds",
            "Time to embed a request's text (batch queueing included)",
        );
        self.proxy.write(
            out,
            "pilot_proxy_overhead_seconds",
            "Time spent on a request outside the upstream call",
        );
        self.feedback_delay.write(
            out,
            "pilot_feedback_delay_seconds",
            "Delay from decision to feedback",
        );
        let _ = writeln!(
            out,
            "# HELP pilot_upstream_errors_total Upstream failures\n# TYPE pilot_upstream_errors_total counter"
        );
        if let Ok(m) = self.upstream_errors.lock() {
            for ((llm, kind), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "pilot_upstream_errors_total{{llm=\"{}\",kind=\"{kind}\"}} {n}",
                    escape(llm)
                );
            }
        }
        for (name, help, v) in [
            (
                "pilot_budget_exhausted_total",
                "Requests refused: nothing fit the budget",
                &self.budget_exhausted,
            ),
            (
                "pilot_overruns_total",
                "Settlements above their hold",
                &self.overruns,
            ),
            (
                "pilot_missing_usage_total",
                "Calls without usage, charged their hold",
                &self.missing_usage,
            ),
            (
                "pilot_feedback_total",
                "Feedbacks accepted",
                &self.feedbacks,
            ),
            (
                "pilot_requests_total",
                "Chat completion requests",
                &self.requests,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// Escapes a Prometheus label value.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
