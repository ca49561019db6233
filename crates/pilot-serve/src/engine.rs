//! The serving engine: one `pilot_router::Router` behind one mutex, every event it drains
//! written to SQLite before the caller answers, snapshots, recovery and the upstream table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use pilot_bandit::{LinUcb, LinUcbVec};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy, ValueOf};
use pilot_core::{ArmId, ErrorKind};
use pilot_embed::{HashingEmbedder, Projection};
use pilot_prior::{Expect, Prior};
use pilot_router::{ArmStart, Event, Input, Price, Quote, Record, Router, RouterConfig, Versions};
use rand_core::SeedableRng;
use rand_pcg::Pcg64;
use serde_json::{Value, json};

use crate::config::{Config, UpstreamConfig};
use crate::metrics::{Metrics, escape};
use crate::store::Store;

/// The policy the server runs.
pub type ServePolicy = LinUcbVec<f32>;
/// The cost policy the guard wraps.
pub type ServeCost = PacingPolicy<f64>;
/// The router the server runs.
pub type ServeRouter = Router<ServePolicy, ServeCost, HashingEmbedder>;

/// An upstream and its key (read from the environment once, never logged).
pub struct Upstream {
    /// Its configuration.
    pub spec: UpstreamConfig,
    /// The API key, if it has one.
    pub api_key: Option<String>,
}

/// Why an engine operation failed.
#[derive(Debug)]
pub enum OpError {
    /// The router refused (unknown request, duplicate, bad value…).
    Router(pilot_core::Error),
    /// The state could not be written: nothing was answered as done.
    Store(anyhow::Error),
    /// A bad operator request (an upstream spec, a missing key).
    Bad(String),
}

impl OpError {
    /// The router error's kind, if it is one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Self::Router(e) => Some(e.kind()),
            Self::Store(_) | Self::Bad(_) => None,
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Router(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "state store: {e:#}"),
            Self::Bad(m) => f.write_str(m),
        }
    }
}

impl From<pilot_core::Error> for OpError {
    fn from(e: pilot_core::Error) -> Self {
        Self::Router(e)
    }
}

/// What `route` decided.
#[derive(Clone, Debug)]
pub struct Routed {
    /// The arm.
    pub arm: usize,
    /// Its name.
    pub name: String,
    /// π(arm | context, candidates).
    pub propensity: f64,
    /// Units held.
    pub hold_units: u64,
    /// `max_tokens` to send upstream (clamped to the LLM's limit).
    pub max_output: u64,
    /// The price in force.
    pub price: Price,
}

struct Inner {
    router: ServeRouter,
    store: Store,
    rng: Pcg64,
    unsaved: Vec<Record>,
    snapshot_every: u64,
}

impl Inner {
    /// Writes every drained event (and any left over from a failed write) to the store.
    fn persist(&mut self) -> Result<(), OpError> {
        let mut records = self.router.drain_events();
        if !self.unsaved.is_empty() {
            let mut all = std::mem::take(&mut self.unsaved);
            all.append(&mut records);
            records = all;
        }
        if let Err(e) = self.store.append(&records) {
            self.unsaved = records;
            return Err(OpError::Store(e));
        }
        let seq = self.router.seq();
        if seq.saturating_sub(self.store.last_snapshot()) >= self.snapshot_every {
            let bytes = self.router.save()?;
            self.store.snapshot(seq, &bytes).map_err(OpError::Store)?;
        }
        Ok(())
    }
}

/// The shared state of a running server.
pub struct Engine {
    inner: Mutex<Inner>,
    /// Counters and histograms.
    pub metrics: Metrics,
    upstreams: RwLock<HashMap<String, Arc<Upstream>>>,
    next_id: AtomicU64,
    /// The configuration it was started with.
    pub config: Config,
    prior: Option<Prior>,
    started: Instant,
}

/// Milliseconds since the Unix epoch: the router's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn policy_fingerprint(config: &Config) -> String {
    let p = &config.policy;
    format!(
        "{} alpha={} lambda={} discount={} embedder={}:{} prior={}",
        p.kind,
        p.alpha,
        p.lambda,
        p.discount,
        config.embedder.kind,
        config.embedder.dim,
        p.prior
            .as_ref()
            .map_or("none".into(), |x| x.display().to_string())
    )
}

fn build_router(
    config: &Config,
    prior: Option<&Prior>,
    arms: &[UpstreamConfig],
) -> Result<ServeRouter> {
    let embedder = HashingEmbedder::new(config.embedder.dim)?;
    let p = &config.policy;
    let params = LinUcb::<(), f32>::params()
        .alpha(p.alpha as f32)
        .lambda(p.lambda as f32)
        .discount(p.discount as f32)
        .check()
        .map_err(|e| anyhow!("policy settings: {e}"))?;
    let dim = prior.map_or(config.embedder.dim, Prior::context_dim);
    let policy = match (p.kind.as_str(), prior) {
        ("pilot", Some(prior)) => {
            let starts: Vec<Option<&[f32]>> = arms.iter().map(|a| prior.theta(&a.name)).collect();
            LinUcbVec::with_priors(params, &starts, dim)?
        }
        _ => LinUcbVec::new(params, arms.len(), dim)?,
    };
    let b = &config.budget;
    let per_query = b.usd / b.expected_requests as f64;
    let price = if per_query > 0.0 {
        b.pacing_price / per_query
    } else {
        1.0
    };
    let cost = PacingPolicy::new(
        OnlineConfig::new(arms.len(), b.usd).with_value(ValueOf::Score),
        PacingParams::new(price)
            .with_target(per_query.max(1e-12))
            .with_step(b.pacing_step),
    )
    .map_err(|e| anyhow!("budget settings: {e}"))?;
    let rc = RouterConfig {
        budget: b.usd,
        units_per_currency: 1e9,
        ttl: config.state.feedback_window_secs.saturating_mul(1000),
        exploration: config.exploration()?,
        record: true,
    };
    let pool = arms
        .iter()
        .map(|a| pilot_router::Arm::new(a.name.clone(), a.price()))
        .collect();
    let mut router = Router::with_embedder(policy, cost, Some(embedder), pool, rc)?;
    if let Some(prior) = prior {
        let map = prior.projection_map().map_err(|e| anyhow!("prior: {e}"))?;
        let owned = Projection::new(map.matrix().to_vec(), map.offset().to_vec(), map.d_in())?;
        router = router.with_projection(owned)?;
    }
    Ok(router)
}

fn upstream(spec: &UpstreamConfig) -> Result<Upstream> {
    let api_key = match &spec.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            anyhow!(
                "upstream {:?}: the environment variable {var} (its api_key_env) is not set",
                spec.name
            )
        })?),
        None => None,
    };
    Ok(Upstream {
        spec: spec.clone(),
        api_key,
    })
}

impl Engine {
    /// Opens the state directory, restores the router (snapshot + the events after it) or
    /// starts it from the config, and adds LLMs the config names that the state lacks.
    ///
    /// # Errors
    /// A bad prior, an unreadable or damaged state, a missing API key.
    pub fn open(config: Config) -> Result<Arc<Self>> {
        let prior = match &config.policy.prior {
            Some(path) => {
                let embedder = HashingEmbedder::new(config.embedder.dim)?;
                let id = pilot_core::Embedder::id(&embedder).to_string();
                Some(
                    Prior::load(
                        path,
                        Expect {
                            embedder_id: Some(&id),
                            d_in: Some(config.embedder.dim),
                        },
                    )
                    .map_err(|e| anyhow!("config key `policy.prior`: {e}"))?,
                )
            }
            None => None,
        };
        let store = Store::open(&config.state.dir, config.state.sync == "full")?;
        let fingerprint = policy_fingerprint(&config);
        let genesis: Vec<UpstreamConfig> = match store.meta("genesis")? {
            Some(g) => {
                let stored = store.meta("policy")?.unwrap_or_default();
                if stored != fingerprint {
                    bail!(
                        "the state in {} was learned with policy `{stored}`, the config asks for `{fingerprint}`: use another state.dir or the same settings",
                        config.state.dir.display()
                    );
                }
                serde_json::from_str(&g).context("state: the stored pool does not decode")?
            }
            None => {
                store.set_meta("genesis", &serde_json::to_string(&config.upstreams)?)?;
                store.set_meta("policy", &fingerprint)?;
                config.upstreams.clone()
            }
        };
        let mut router = build_router(&config, prior.as_ref(), &genesis)?;
        let fresh = store.event_count()? == 0 && store.latest_snapshot()?.is_none();
        let mut max_request = 0u64;
        if let Some((seq, bytes)) = store.latest_snapshot()? {
            router
                .restore(&bytes)
                .map_err(|e| anyhow!("state: snapshot at event {seq}: {e}"))?;
        }
        for record in store.events_from(router.seq())? {
            if let Event::Decision(d) = &record.event {
                max_request = max_request.max(d.request);
            }
            router
                .apply(&record)
                .map_err(|e| anyhow!("state: event {}: {e}", record.seq))?;
        }
        let now = now_ms();
        if fresh {
            router.set_versions(
                Versions {
                    router: format!("pilot-serve {}", env!("CARGO_PKG_VERSION")),
                    policy: fingerprint.clone(),
                    prior: config
                        .policy
                        .prior
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string()),
                    embedder: format!("hash:{}", config.embedder.dim),
                },
                now,
            )?;
        }
        // Upstreams: the config's, then the operator's (the state remembers those).
        let mut table = HashMap::new();
        for spec in config.upstreams.iter().cloned().chain(store.upstreams()?) {
            table.insert(spec.name.clone(), Arc::new(upstream(&spec)?));
        }
        for spec in &config.upstreams {
            match router.arm_named(&spec.name) {
                None => {
                    let start = start_for(&config, prior.as_ref(), &spec.name);
                    router.add_arm(&spec.name, spec.price(), start, now)?;
                }
                Some(a) => {
                    let arm = &router.arms()[a.index()];
                    if arm.price != spec.price() {
                        eprintln!(
                            "pilot serve: {}: the state's price {:?} differs from the config's; the state's stays (change it with POST /admin/llms/{}/price)",
                            spec.name, arm.price, spec.name
                        );
                    }
                }
            }
        }
        let budget = router.guard().to_currency(router.ledger().budget);
        if !fresh && (budget - config.budget.usd).abs() > 1e-9 {
            eprintln!(
                "pilot serve: the state's budget is {budget} USD, the config says {}; the state's stays (change it with POST /admin/budget)",
                config.budget.usd
            );
        }
        let names: Vec<String> = router.arms().iter().map(|a| a.name.clone()).collect();
        for (i, name) in names.iter().enumerate() {
            if !table.contains_key(name) && router.arms()[i].enabled {
                eprintln!("pilot serve: {name}: no upstream configured any more; disabled");
                router.set_enabled(ArmId::new(i), false, now)?;
            }
        }
        let snapshot_every = config.state.snapshot_every;
        let seed = config.server.seed ^ router.seq();
        let mut inner = Inner {
            router,
            store,
            rng: Pcg64::seed_from_u64(seed),
            unsaved: Vec::new(),
            snapshot_every,
        };
        inner.persist().map_err(|e| anyhow!("{e}"))?;
        if config.budget.period_secs > 0 && inner.store.meta("period")?.is_none() {
            let idx = now / 1000 / config.budget.period_secs;
            inner.store.set_meta("period", &idx.to_string())?;
        }
        let first_id = (now.saturating_mul(1000)).max(max_request.saturating_add(1));
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
            metrics: Metrics::new(),
            upstreams: RwLock::new(table),
            next_id: AtomicU64::new(first_id),
            config,
            prior,
            started: Instant::now(),
        }))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, OpError> {
        self.inner
            .lock()
            .map_err(|_| OpError::Store(anyhow!("router lock poisoned")))
    }

    /// A fresh request id.
    pub fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The upstream named `name`.
    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams.read().ok()?.get(name).cloned()
    }

    /// The pool: (name, enabled) per arm.
    pub fn pool(&self) -> Vec<(String, bool)> {
        self.lock()
            .map(|g| {
                g.router
                    .arms()
                    .iter()
                    .map(|a| (a.name.clone(), a.enabled))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Routes request `id` on `text`, with `input_tokens` (a bound) and `max_output` asked;
    /// arms where `exclude` is true are left out; `only` pins the request to the LLM of that
    /// name. `Ok(None)`: nothing fits the budget.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub fn route(
        &self,
        id: u64,
        text: &str,
        input_tokens: u64,
        max_output: u64,
        exclude: &[bool],
        only: Option<&str>,
    ) -> Result<Option<Routed>, OpError> {
        let mut g = self.lock()?;
        let inner = &mut *g;
        // A request pinned to one LLM: the mask is made under the lock, so an LLM added
        // meanwhile cannot slip in.
        let pinned: Vec<bool>;
        let exclude = match only {
            Some(name) => {
                let keep = inner.router.arm_named(name).map(ArmId::index);
                pinned = (0..inner.router.arms().len())
                    .map(|a| Some(a) != keep)
                    .collect();
                &pinned[..]
            }
            None => exclude,
        };
        let t = Instant::now();
        let d = inner.router.route_excluding(
            id,
            Input::Text(text),
            Quote::Tokens {
                input: input_tokens,
                expected_output: self.config.policy.expected_output_tokens.min(max_output),
                max_output,
            },
            exclude,
            now_ms(),
            &mut inner.rng,
        )?;
        let el = t.elapsed();
        self.metrics.route.observe(el.as_secs_f64());
        self.metrics.route_ring.push(el.as_nanos() as u64);
        inner.persist()?;
        let Some(arm) = d.arm else {
            return Ok(None);
        };
        let a = &inner.router.arms()[arm.index()];
        Ok(Some(Routed {
            arm: arm.index(),
            name: a.name.clone(),
            propensity: d.propensity,
            hold_units: d.arms[arm.index()].worst,
            max_output: max_output.min(a.price.max_output_tokens.max(1)),
            price: a.price,
        }))
    }

    /// The call finished and cost `cost` USD.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub fn settle(&self, id: u64, cost: f64) -> Result<bool, OpError> {
        let mut g = self.lock()?;
        let overrun = g.router.settle(id, cost, now_ms())?;
        g.persist()?;
        if overrun {
            self.metrics.overruns.fetch_add(1, Ordering::Relaxed);
        }
        Ok(overrun)
    }

    /// The call finished without a usable `usage`: it is charged its whole hold.
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub fn settle_hold(&self, id: u64, hold_units: u64) -> Result<(), OpError> {
        self.metrics.missing_usage.fetch_add(1, Ordering::Relaxed);
        // The guard rounds currency up to units: a quarter unit below the hold is the hold.
        let cost = (hold_units as f64 - 0.25).max(0.0) / 1e9;
        self.settle(id, cost).map(|_| ())
    }

    /// The call failed before costing anything.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub fn release(&self, id: u64) -> Result<(), OpError> {
        let mut g = self.lock()?;
        g.router.release(id, now_ms())?;
        g.persist()
    }

    /// A reward for request `id`; durable when this returns `Ok`.
    ///
    /// # Errors
    /// The router's error (unknown, duplicate, out of range); the store's.
    pub fn feedback(&self, id: u64, reward: f32) -> Result<(), OpError> {
        let mut g = self.lock()?;
        let now = now_ms();
        g.router.feedback(id, reward, now)?;
        let delay = g.router.drain_events();
        for r in &delay {
            if let Event::Feedback { delay, .. } = r.event {
                self.metrics.feedback_delay.observe(delay as f64 / 1000.0);
            }
        }
        g.unsaved.extend(delay);
        g.persist()?;
        self.metrics.feedbacks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds an upstream LLM to the pool (and remembers it in the state).
    ///
    /// # Errors
    /// A bad spec, a missing key, the router's or store's error.
    pub fn add_llm(&self, spec: UpstreamConfig) -> Result<usize, OpError> {
        spec.check("llm").map_err(|e| OpError::Bad(e.to_string()))?;
        let up = upstream(&spec).map_err(|e| OpError::Bad(format!("{e:#}")))?;
        let mut g = self.lock()?;
        let start = start_for(&self.config, self.prior.as_ref(), &spec.name);
        let arm = g
            .router
            .add_arm(&spec.name, spec.price(), start, now_ms())?;
        g.store.put_upstream(&spec).map_err(OpError::Store)?;
        g.persist()?;
        if let Ok(mut t) = self.upstreams.write() {
            t.insert(spec.name.clone(), Arc::new(up));
        }
        Ok(arm.index())
    }

    fn arm(&self, g: &Inner, name: &str) -> Result<ArmId, OpError> {
        g.router
            .arm_named(name)
            .ok_or(OpError::Router(pilot_core::Error::new(
                ErrorKind::UnknownArm,
                "no LLM of that name in the pool",
            )))
    }

    /// Enables or disables an LLM.
    ///
    /// # Errors
    /// Unknown name; the store's error.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), OpError> {
        let mut g = self.lock()?;
        let a = self.arm(&g, name)?;
        g.router.set_enabled(a, enabled, now_ms())?;
        g.persist()
    }

    /// Changes an LLM's price.
    ///
    /// # Errors
    /// Unknown name, bad price; the store's error.
    pub fn set_price(&self, name: &str, price: Price) -> Result<(), OpError> {
        let mut g = self.lock()?;
        let a = self.arm(&g, name)?;
        g.router.set_price(a, price, now_ms())?;
        g.persist()
    }

    /// The price of an LLM.
    pub fn price(&self, name: &str) -> Option<Price> {
        let g = self.lock().ok()?;
        let a = g.router.arm_named(name)?;
        Some(g.router.arms()[a.index()].price)
    }

    /// Changes the budget (USD), keeping what is spent.
    ///
    /// # Errors
    /// A cut below spent + reserved; the store's error.
    pub fn set_budget(&self, usd: f64) -> Result<(), OpError> {
        let mut g = self.lock()?;
        g.router.set_budget(usd, now_ms())?;
        g.persist()
    }

    /// Starts a new budget period (USD; `None`: the current budget).
    ///
    /// # Errors
    /// As [`set_budget`](Self::set_budget).
    pub fn new_period(&self, usd: Option<f64>) -> Result<(), OpError> {
        let mut g = self.lock()?;
        let usd = usd.unwrap_or_else(|| g.router.guard().to_currency(g.router.ledger().budget));
        g.router.new_period(usd, now_ms())?;
        g.persist()
    }

    /// Starts a new period when the configured period length has passed; expires old holds.
    ///
    /// # Errors
    /// The router's or store's error.
    pub fn tick(&self) -> Result<(), OpError> {
        let now = now_ms();
        let period = self.config.budget.period_secs;
        {
            let mut g = self.lock()?;
            g.router.expire_due(now)?;
            g.persist()?;
            if period == 0 {
                return Ok(());
            }
            let idx = now / 1000 / period;
            let stored: u64 = g
                .store
                .meta("period")
                .map_err(OpError::Store)?
                .and_then(|s| s.parse().ok())
                .unwrap_or(idx);
            if stored == idx {
                return Ok(());
            }
            let usd = g.router.guard().to_currency(g.router.ledger().budget);
            g.router.new_period(usd, now)?;
            g.persist()?;
            g.store
                .set_meta("period", &idx.to_string())
                .map_err(OpError::Store)?;
        }
        Ok(())
    }

    /// Budget, spent, reserved (USD).
    pub fn ledger_usd(&self) -> (f64, f64, f64) {
        match self.lock() {
            Ok(g) => {
                let l = g.router.ledger();
                let c = |u| g.router.guard().to_currency(u);
                (c(l.budget), c(l.spent), c(l.reserved))
            }
            Err(_) => (0.0, 0.0, 0.0),
        }
    }

    /// `/v1/router/state` as JSON.
    pub fn state_json(&self) -> Value {
        let Ok(g) = self.lock() else {
            return json!({"error": "router lock poisoned"});
        };
        let r = &g.router;
        let c = |u| r.guard().to_currency(u);
        let l = r.ledger();
        let arms: Vec<Value> = r
            .arms()
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "enabled": a.enabled,
                    "input_per_mtok": a.price.input_per_mtok,
                    "output_per_mtok": a.price.output_per_mtok,
                    "max_output_tokens": a.price.max_output_tokens,
                    "decisions": a.decisions,
                    "feedbacks": a.feedbacks,
                    "mean_reward": if a.feedbacks > 0 { Some(a.reward_sum / a.feedbacks as f64) } else { None },
                    "spent_usd": c(a.spent),
                })
            })
            .collect();
        let (r50, r99, rmax, rn) = self.metrics.route_ring.percentiles();
        let (p50, p99, pmax, pn) = self.metrics.proxy_ring.percentiles();
        let (over_n, over_units) = r.guard().overruns();
        json!({
            "llms": arms,
            "budget": {
                "budget_usd": c(l.budget),
                "spent_usd": c(l.spent),
                "reserved_usd": c(l.reserved),
                "left_usd": c(l.available()),
                "overruns": over_n,
                "overrun_usd": c(over_units),
            },
            "pending": r.pending(),
            "events": r.seq(),
            "versions": r.versions(),
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "overhead_us": {
                "route": {"p50": r50, "p99": r99, "max": rmax, "samples": rn},
                "proxy": {"p50": p50, "p99": p99, "max": pmax, "samples": pn},
            },
        })
    }

    /// `/metrics` as Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        if let Ok(g) = self.lock() {
            let r = &g.router;
            let c = |u| r.guard().to_currency(u);
            let l = r.ledger();
            out.push_str("# HELP pilot_decisions_total Decisions that called an LLM\n# TYPE pilot_decisions_total counter\n");
            for a in r.arms() {
                out.push_str(&format!(
                    "pilot_decisions_total{{llm=\"{}\"}} {}\n",
                    escape(&a.name),
                    a.decisions
                ));
            }
            out.push_str("# HELP pilot_spend_usd_total Settled spend per LLM\n# TYPE pilot_spend_usd_total counter\n");
            for a in r.arms() {
                out.push_str(&format!(
                    "pilot_spend_usd_total{{llm=\"{}\"}} {}\n",
                    escape(&a.name),
                    c(a.spent)
                ));
            }
            out.push_str("# HELP pilot_feedbacks_total Feedbacks learned per LLM\n# TYPE pilot_feedbacks_total counter\n");
            for a in r.arms() {
                out.push_str(&format!(
                    "pilot_feedbacks_total{{llm=\"{}\"}} {}\n",
                    escape(&a.name),
                    a.feedbacks
                ));
            }
            for (name, v) in [
                ("pilot_budget_usd", c(l.budget)),
                ("pilot_spent_usd", c(l.spent)),
                ("pilot_reserved_usd", c(l.reserved)),
                ("pilot_pending_requests", r.pending() as f64),
            ] {
                out.push_str(&format!("# TYPE {name} gauge\n{name} {v}\n"));
            }
        }
        self.metrics.write(&mut out);
        out
    }

    /// Writes a snapshot now (tests and shutdown).
    ///
    /// # Errors
    /// The router's or store's error.
    pub fn snapshot_now(&self) -> Result<(), OpError> {
        let mut g = self.lock()?;
        g.persist()?;
        let seq = g.router.seq();
        let bytes = g.router.save()?;
        g.store.snapshot(seq, &bytes).map_err(OpError::Store)
    }
}

/// Rebuilds the router of a state directory twice, from its newest snapshot plus the events
/// after it and from every event since the start, and checks both give the same bytes: the
/// recovered state is the replay of the stored events.
///
/// # Errors
/// A damaged state, or the two differing.
pub fn check_replay(config: &Config) -> Result<u64> {
    let prior = match &config.policy.prior {
        Some(path) => {
            Some(Prior::load(path, Expect::default()).map_err(|e| anyhow!("policy.prior: {e}"))?)
        }
        None => None,
    };
    let store = Store::open(&config.state.dir, false)?;
    let genesis: Vec<UpstreamConfig> = serde_json::from_str(
        &store
            .meta("genesis")?
            .ok_or_else(|| anyhow!("no state in {}", config.state.dir.display()))?,
    )?;
    let mut recovered = build_router(config, prior.as_ref(), &genesis)?;
    if let Some((_, bytes)) = store.latest_snapshot()? {
        recovered.restore(&bytes)?;
    }
    for r in store.events_from(recovered.seq())? {
        recovered.apply(&r)?;
    }
    let mut replayed = build_router(config, prior.as_ref(), &genesis)?;
    for r in store.events_from(0)? {
        replayed.apply(&r)?;
    }
    if recovered.seq() != replayed.seq() || recovered.save()? != replayed.save()? {
        bail!(
            "the recovered state (snapshot + tail, {} events) differs from the replay of all {} events",
            recovered.seq(),
            replayed.seq()
        );
    }
    Ok(replayed.seq())
}

fn start_for(config: &Config, prior: Option<&Prior>, name: &str) -> ArmStart {
    match (config.policy.kind.as_str(), prior) {
        ("pilot", Some(p)) => match p.theta(name) {
            Some(t) => ArmStart::Vector(t.to_vec()),
            None => ArmStart::MeanOfOthers,
        },
        _ => ArmStart::Neutral,
    }
}
