//! The serving engine: one `pilot_router::Router` behind one mutex, held only for the
//! in-memory decision or update; with SQLite its events are queued under it and stored by a
//! group commit (`commit.rs`) before the caller answers; with Redis (`shared.rs`) each change is
//! committed to the shared stream by a Lua script, then folded; snapshots, recovery and the
//! upstream table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use pilot_bandit::{ArmTrust, LinUcb, LinUcbVec, PriorTrust, TrustParams};
use pilot_budget::{OnlineConfig, PacingParams, PacingPolicy, ValueOf};
use pilot_core::{ArmId, ErrorKind};
use pilot_embed::Projection;
use pilot_prior::{Expect, Prior};
use pilot_router::{
    ArmStart, Event, Input, LivePolicy, Price, Quote, Router, RouterConfig, Versions,
};
use rand_core::SeedableRng;
use rand_pcg::Pcg64;
use serde_json::{Value, json};

use crate::commit::{Committer, Item};
use crate::config::{Config, StateBackend, UpstreamConfig};
use crate::embed::ServeEmbedder;
use crate::metrics::{Metrics, escape};
use crate::shared::{AdminKind, Shared};
use crate::store::Store;

/// The policy the server runs: LinUCB, PILOT or PILOT with learned trust (`policy.kind`).
pub type ServePolicy = Box<dyn LivePolicy + Send>;
/// The cost policy the guard wraps.
pub type ServeCost = PacingPolicy<f64>;
/// The router the server runs (texts are embedded before it, by [`ServeEmbedder`]).
pub type ServeRouter = Router<ServePolicy, ServeCost>;

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

/// Where the state lives: this server's SQLite database, or Redis shared with other replicas.
enum Backend {
    Sqlite(Store),
    Redis(Box<Shared>),
}

struct Inner {
    router: ServeRouter,
    backend: Backend,
    rng: Pcg64,
    /// The sequence number of the last snapshot queued (SQLite).
    snap_seq: u64,
    snapshot_every: u64,
}

impl Inner {
    /// The shared state, when the backend is Redis.
    fn shared(&mut self) -> Option<(&mut ServeRouter, &mut Shared)> {
        match &mut self.backend {
            Backend::Redis(s) => Some((&mut self.router, s)),
            Backend::Sqlite(_) => None,
        }
    }

    /// The SQLite store, when the backend is SQLite.
    fn store(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Redis(_) => None,
        }
    }
}

/// The shared state of a running server.
pub struct Engine {
    inner: Mutex<Inner>,
    /// The writer of the events (group commit); queued to under the lock. `None` with Redis,
    /// whose events the Lua scripts commit.
    commit: Option<Committer>,
    /// Counters and histograms.
    pub metrics: Metrics,
    upstreams: RwLock<HashMap<String, Arc<Upstream>>>,
    next_id: AtomicU64,
    /// The configuration it was started with.
    pub config: Config,
    prior: Option<Prior>,
    started: Instant,
    /// The embedder requests are routed on.
    pub embedder: ServeEmbedder,
}

/// Milliseconds since the Unix epoch: the router's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn policy_fingerprint(config: &Config, embedder: &ServeEmbedder) -> String {
    let p = &config.policy;
    format!(
        "{} alpha={} lambda={} discount={} embedder={} prior={}",
        p.kind,
        p.alpha,
        p.lambda,
        p.discount,
        embedder.label(),
        p.prior
            .as_ref()
            .map_or("none".into(), |x| x.display().to_string())
    )
}

/// The router a config starts from over the pool `arms`: contexts of the prior's dimension,
/// else of the embedder's (`embedding_dim`).
///
/// # Errors
/// Bad policy or budget settings; a prior that does not fit.
pub fn build_router(
    config: &Config,
    prior: Option<&Prior>,
    arms: &[UpstreamConfig],
    embedding_dim: usize,
) -> Result<ServeRouter> {
    let (policy, cost) = build_policies(config, prior, arms, embedding_dim)?;
    let b = &config.budget;
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
    let mut router = Router::new(policy, cost, pool, rc)?;
    if let Some(prior) = prior {
        let map = prior.projection_map().map_err(|e| anyhow!("prior: {e}"))?;
        let owned = Projection::new(map.matrix().to_vec(), map.offset().to_vec(), map.d_in())?;
        router = router.with_projection(owned)?;
    }
    Ok(router)
}

/// The routing policy and the cost policy a config runs over the pool `arms` (what
/// [`build_router`] composes; also for driving the same policies elsewhere, e.g. through
/// pilot-sim's episode engine).
///
/// # Errors
/// As [`build_router`].
pub fn build_policies(
    config: &Config,
    prior: Option<&Prior>,
    arms: &[UpstreamConfig],
    embedding_dim: usize,
) -> Result<(ServePolicy, ServeCost)> {
    let p = &config.policy;
    let params = LinUcb::<(), f32>::params()
        .alpha(p.alpha as f32)
        .lambda(p.lambda as f32)
        .discount(p.discount as f32)
        .check()
        .map_err(|e| anyhow!("policy settings: {e}"))?;
    let dim = prior.map_or(embedding_dim, Prior::context_dim);
    let policy: ServePolicy = match (p.kind.as_str(), prior) {
        ("pilot", Some(prior)) => {
            let starts: Vec<Option<&[f32]>> = arms.iter().map(|a| prior.theta(&a.name)).collect();
            Box::new(LinUcbVec::with_priors(params, &starts, dim)?)
        }
        ("pilot-trust", Some(prior)) => {
            let starts: Vec<Option<&[f32]>> = arms.iter().map(|a| prior.theta(&a.name)).collect();
            let inner = LinUcbVec::with_priors(params, &starts, dim)?;
            let slots = vec![ArmTrust::start(0.5); arms.len()];
            let mut trusting = PriorTrust::new(inner, slots, TrustParams::default())?;
            // An LLM the prior has no vector for starts at a stand-in: it earns trust from its
            // rewards, starting at a small weight (and so is explored).
            for (i, start) in starts.iter().enumerate() {
                if start.is_none() {
                    trusting.mark_fresh(ArmId::new(i))?;
                }
            }
            Box::new(trusting)
        }
        _ => Box::new(LinUcbVec::new(params, arms.len(), dim)?),
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
    Ok((policy, cost))
}

/// The versions a fresh state records: this server, the policy settings (`fingerprint`), the
/// prior file and the embedder.
fn versions(config: &Config, embedder: &ServeEmbedder, fingerprint: &str) -> Versions {
    Versions {
        router: format!("pilot-serve {}", env!("CARGO_PKG_VERSION")),
        policy: fingerprint.to_owned(),
        prior: config
            .policy
            .prior
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string()),
        embedder: format!("{} {}", embedder.id(), embedder.label()),
    }
}

/// The upstreams by name: the config's, then those the operator added (`extra`, remembered by
/// the state), each with its key read from the environment.
fn upstream_table(
    config: &Config,
    extra: Vec<UpstreamConfig>,
) -> Result<HashMap<String, Arc<Upstream>>> {
    let mut table = HashMap::new();
    for spec in config.upstreams.iter().cloned().chain(extra) {
        table.insert(spec.name.clone(), Arc::new(upstream(&spec)?));
    }
    Ok(table)
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
        let embedder = ServeEmbedder::open(&config.embedder)?;
        let prior = load_prior(&config, &embedder)?;
        if let StateBackend::Redis(url) = config.state.backend() {
            return Self::open_redis(config, prior, embedder, &url);
        }
        let store = Store::open(&config.state.dir, config.state.sync == "full")?;
        let fingerprint = policy_fingerprint(&config, &embedder);
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
        let mut router = build_router(&config, prior.as_ref(), &genesis, embedder.dim())?;
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
            router.set_versions(versions(&config, &embedder, &fingerprint), now)?;
        }
        // Upstreams: the config's, then the operator's (the state remembers those).
        let table = upstream_table(&config, store.upstreams()?)?;
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
        // What opening changed is stored now; from here on the writer thread stores events.
        let mut store = store;
        store.append(&router.drain_events())?;
        let commit = Committer::start(
            Store::open(&config.state.dir, config.state.sync == "full")?,
            router.seq(),
        )?;
        if config.budget.period_secs > 0 && store.meta("period")?.is_none() {
            let idx = now / 1000 / config.budget.period_secs;
            store.set_meta("period", &idx.to_string())?;
        }
        let inner = Inner {
            router,
            snap_seq: store.last_snapshot(),
            backend: Backend::Sqlite(store),
            rng: Pcg64::seed_from_u64(seed),
            snapshot_every,
        };
        let first_id = (now.saturating_mul(1000)).max(max_request.saturating_add(1));
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
            commit: Some(commit),
            metrics: Metrics::new(),
            upstreams: RwLock::new(table),
            next_id: AtomicU64::new(first_id),
            config,
            prior,
            started: Instant::now(),
            embedder,
        }))
    }

    /// Opens a replica on the Redis state at `url`: stores the genesis (pool, settings, first
    /// budget) if it is the first, else checks the settings match; restores the newest shared
    /// snapshot, folds the stream after it, and adds the config's LLMs the pool lacks.
    fn open_redis(
        config: Config,
        prior: Option<Prior>,
        embedder: ServeEmbedder,
        url: &str,
    ) -> Result<Arc<Self>> {
        let ttl_ms = config.state.feedback_window_secs.saturating_mul(1000);
        let mut shared = Shared::connect(url, config.state.snapshot_every, ttl_ms)?;
        let b = &config.budget;
        let fingerprint = format!(
            "{} expected_requests={} pacing_price={} pacing_step={} period_secs={} feedback_window_secs={}",
            policy_fingerprint(&config, &embedder),
            b.expected_requests,
            b.pacing_price,
            b.pacing_step,
            b.period_secs,
            config.state.feedback_window_secs
        );
        let now = now_ms();
        let period = (b.period_secs > 0).then(|| now / 1000 / b.period_secs);
        let units = pilot_budget::to_units(b.usd, 1e9, "config key `budget.usd`")
            .map_err(|e| anyhow!("{e}"))?;
        let genesis = shared.init(
            &serde_json::to_string(&config.upstreams)?,
            &fingerprint,
            b.usd,
            units,
            period,
        )?;
        if genesis.policy != fingerprint {
            bail!(
                "the shared state at {url} was learned with `{}`, this replica's config asks for `{fingerprint}`: every replica needs the same policy, embedder, budget pacing and period, and feedback window",
                genesis.policy
            );
        }
        let pool: Vec<UpstreamConfig> = serde_json::from_str(&genesis.pool)
            .context("shared state: the stored pool does not decode")?;
        let mut first = config.clone();
        first.budget.usd = genesis.budget;
        let mut router = build_router(&first, prior.as_ref(), &pool, embedder.dim())?;
        shared.restore_snapshot(&mut router)?;
        let e = |e: OpError| anyhow!("{e}");
        shared.catch_up(&mut router).map_err(e)?;
        let versions = versions(&config, &embedder, &fingerprint);
        shared
            .admin(&mut router, now, |r| {
                Ok((r.seq() == 0).then(|| (Event::Versions(versions.clone()), AdminKind::Plain)))
            })
            .map_err(e)?;
        let table = upstream_table(&config, shared.upstreams().map_err(e)?)?;
        for spec in &config.upstreams {
            let start = start_for(&config, prior.as_ref(), &spec.name);
            shared
                .admin(&mut router, now, |r| match r.arm_named(&spec.name) {
                    Some(_) => Ok(None),
                    None => Ok(Some((
                        r.add_arm_event(&spec.name, spec.price(), start.clone())?,
                        AdminKind::Pool,
                    ))),
                })
                .map_err(e)?;
        }
        for a in router.arms() {
            if !table.contains_key(&a.name) && a.enabled {
                eprintln!(
                    "pilot serve: {}: in the shared pool but no upstream is configured on this replica (it stays enabled for the others)",
                    a.name
                );
            }
        }
        // Folded events are already in the stream: none is stored again here.
        router.drain_events();
        let first_id = shared.id_block().map_err(e)? - crate::shared::ID_BLOCK + 1;
        let seed = config.server.seed ^ router.seq() ^ first_id;
        let inner = Inner {
            router,
            backend: Backend::Redis(Box::new(shared)),
            rng: Pcg64::seed_from_u64(seed),
            snap_seq: 0,
            snapshot_every: config.state.snapshot_every,
        };
        Ok(Arc::new(Self {
            inner: Mutex::new(inner),
            commit: None,
            metrics: Metrics::new(),
            upstreams: RwLock::new(table),
            next_id: AtomicU64::new(first_id),
            config,
            prior,
            started: Instant::now(),
            embedder,
        }))
    }

    /// Queues every event drained from the router (and a snapshot when one is due) for the
    /// writer, under the lock so they keep their order; returns the ticket to
    /// [`wait`](Self::wait) on before answering. With Redis every change was committed to the
    /// shared stream before it was folded: the drained events are dropped.
    fn persist(&self, g: &mut Inner) -> Result<u64, OpError> {
        let records = g.router.drain_events();
        let seq = g.router.seq();
        let Some(commit) = &self.commit else {
            return Ok(seq);
        };
        if !records.is_empty() {
            commit
                .queue(Item::Records(records))
                .map_err(OpError::Store)?;
        }
        if seq.saturating_sub(g.snap_seq) >= g.snapshot_every {
            let bytes = g.router.save()?;
            commit
                .queue(Item::Snapshot(seq, bytes))
                .map_err(OpError::Store)?;
            g.snap_seq = seq;
        }
        Ok(seq)
    }

    /// Resolves when the events before `ticket` are stored (at once with Redis: its scripts
    /// committed them before they were folded).
    async fn wait(&self, ticket: u64) -> Result<(), OpError> {
        let Some(commit) = &self.commit else {
            return Ok(());
        };
        let t = Instant::now();
        let r = commit.commit(ticket).map_err(OpError::Store);
        self.metrics.commit_ring.push(t.elapsed().as_nanos() as u64);
        r
    }

    /// Stores everything queued (SQLite; nothing to do with Redis).
    fn flush(&self) -> Result<(), OpError> {
        match &self.commit {
            Some(c) => c.flush().map_err(OpError::Store),
            None => Ok(()),
        }
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

    /// Embeds a request's text (outside the router's lock; batched with concurrent requests'
    /// for a model on a worker thread).
    ///
    /// # Errors
    /// The embedder's error (e.g. a text the hashing embedder finds no word in).
    pub async fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let (v, took) = self.embedder.embed(text).await?;
        self.metrics.embed.observe(took.as_secs_f64());
        self.metrics.embed_ring.push(took.as_nanos() as u64);
        Ok(v)
    }

    /// Routes request `id` on its embedding `base` ([`embed`](Self::embed)), with
    /// `input_tokens` (a bound) and `max_output` asked;
    /// arms where `exclude` is true are left out; `only` pins the request to the LLM of that
    /// name. `Ok(None)`: nothing fits the budget.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub async fn route(
        &self,
        id: u64,
        base: &[f32],
        input_tokens: u64,
        max_output: u64,
        exclude: &[bool],
        only: Option<&str>,
    ) -> Result<Option<Routed>, OpError> {
        let (routed, ticket) =
            self.route_locked(id, base, input_tokens, max_output, exclude, only)?;
        self.wait(ticket).await?;
        Ok(routed)
    }

    fn route_locked(
        &self,
        id: u64,
        base: &[f32],
        input_tokens: u64,
        max_output: u64,
        exclude: &[bool],
        only: Option<&str>,
    ) -> Result<(Option<Routed>, u64), OpError> {
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
        let input = if self.prior.is_some() {
            Input::Base(base)
        } else {
            Input::Context(base)
        };
        let quote = Quote::Tokens {
            input: input_tokens,
            expected_output: self.config.policy.expected_output_tokens.min(max_output),
            max_output,
        };
        let d = match &mut inner.backend {
            // The decision, its commit to the shared stream and the fold are one step here.
            Backend::Redis(shared) => shared.route(
                &mut inner.router,
                &mut inner.rng,
                id,
                input,
                quote,
                exclude,
                now_ms(),
            )?,
            Backend::Sqlite(_) => {
                inner
                    .router
                    .route_excluding(id, input, quote, exclude, now_ms(), &mut inner.rng)?
            }
        };
        let el = t.elapsed();
        self.metrics.route.observe(el.as_secs_f64());
        self.metrics.route_ring.push(el.as_nanos() as u64);
        let ticket = self.persist(inner)?;
        let Some(arm) = d.arm else {
            return Ok((None, ticket));
        };
        let a = &inner.router.arms()[arm.index()];
        let routed = Some(Routed {
            arm: arm.index(),
            name: a.name.clone(),
            propensity: d.propensity,
            hold_units: d.arms[arm.index()].worst,
            max_output: max_output.min(a.price.max_output_tokens.max(1)),
            price: a.price,
        });
        Ok((routed, ticket))
    }

    /// The call finished and cost `cost` USD.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub async fn settle(&self, id: u64, cost: f64) -> Result<bool, OpError> {
        let (overrun, ticket) = self.settle_nowait(id, cost)?;
        self.wait(ticket).await?;
        Ok(overrun)
    }

    /// [`settle`](Self::settle) without waiting for the event to be stored (a stream's end,
    /// where no answer waits on it); returns whether it overran and the ticket.
    ///
    /// # Errors
    /// The router's error; the writer's.
    pub fn settle_nowait(&self, id: u64, cost: f64) -> Result<(bool, u64), OpError> {
        let mut g = self.lock()?;
        let overrun = match g.shared() {
            Some((router, shared)) => {
                let event = router.settle_event(id, cost)?;
                let charged = router.guard().units(cost, "settle: real cost")?;
                let overrun = matches!(event, Event::Settle { overrun: true, .. });
                shared.close(router, "settle", id, event, charged, now_ms())?;
                overrun
            }
            None => g.router.settle(id, cost, now_ms())?,
        };
        let ticket = self.persist(&mut g)?;
        if overrun {
            self.metrics.overruns.fetch_add(1, Ordering::Relaxed);
        }
        Ok((overrun, ticket))
    }

    /// The cost charged for a call without a usable `usage`: its whole hold.
    pub fn hold_cost(&self, hold_units: u64) -> f64 {
        self.metrics.missing_usage.fetch_add(1, Ordering::Relaxed);
        // The guard rounds currency up to units: a quarter unit below the hold is the hold.
        (hold_units as f64 - 0.25).max(0.0) / 1e9
    }

    /// The call finished without a usable `usage`: it is charged its whole hold.
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub async fn settle_hold(&self, id: u64, hold_units: u64) -> Result<(), OpError> {
        let cost = self.hold_cost(hold_units);
        self.settle(id, cost).await.map(|_| ())
    }

    /// The call failed before costing anything.
    ///
    /// # Errors
    /// The router's error; the store's.
    pub async fn release(&self, id: u64) -> Result<(), OpError> {
        let ticket = {
            let mut g = self.lock()?;
            match g.shared() {
                Some((router, shared)) => {
                    let event = router.release_event(id)?;
                    shared.close(router, "release", id, event, 0, now_ms())?;
                }
                None => g.router.release(id, now_ms())?,
            }
            self.persist(&mut g)?
        };
        self.wait(ticket).await
    }

    /// A reward for request `id`; durable when this returns `Ok`.
    ///
    /// # Errors
    /// The router's error (unknown, duplicate, out of range); the store's.
    pub async fn feedback(&self, id: u64, reward: f32) -> Result<(), OpError> {
        let ticket = {
            let mut g = self.lock()?;
            let now = now_ms();
            if let Some((router, shared)) = g.shared() {
                // Feedback may come to any replica: the decision is in the folded stream.
                shared.catch_up(router)?;
                let event = router.feedback_event(id, reward, now)?;
                if let Event::Feedback { delay, .. } = event {
                    self.metrics.feedback_delay.observe(delay as f64 / 1000.0);
                }
                shared.close(router, "feedback", id, event, 0, now)?;
            } else {
                g.router.feedback(id, reward, now)?;
                let records = g.router.drain_events();
                for r in &records {
                    if let Event::Feedback { delay, .. } = r.event {
                        self.metrics.feedback_delay.observe(delay as f64 / 1000.0);
                    }
                }
                if let Some(commit) = &self.commit {
                    commit
                        .queue(Item::Records(records))
                        .map_err(OpError::Store)?;
                }
            }
            self.persist(&mut g)?
        };
        self.wait(ticket).await?;
        self.metrics.feedbacks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds an upstream LLM to the pool (and remembers it in the state).
    ///
    /// # Errors
    /// A bad spec, a missing key, the router's or store's error.
    pub async fn add_llm(&self, spec: UpstreamConfig) -> Result<usize, OpError> {
        spec.check("llm").map_err(|e| OpError::Bad(e.to_string()))?;
        let up = upstream(&spec).map_err(|e| OpError::Bad(format!("{e:#}")))?;
        let (arm, ticket) = {
            let mut g = self.lock()?;
            let start = start_for(&self.config, self.prior.as_ref(), &spec.name);
            let arm = match g.shared() {
                Some((router, shared)) => {
                    shared.put_upstream(&spec)?;
                    shared.admin(router, now_ms(), |r| {
                        Ok(Some((
                            r.add_arm_event(&spec.name, spec.price(), start.clone())?,
                            AdminKind::Pool,
                        )))
                    })?;
                    router
                        .arm_named(&spec.name)
                        .ok_or(OpError::Router(pilot_core::Error::new(
                            ErrorKind::UnknownArm,
                            "the added LLM is missing",
                        )))?
                }
                None => {
                    let arm = g
                        .router
                        .add_arm(&spec.name, spec.price(), start, now_ms())?;
                    if let Some(store) = g.store() {
                        store.put_upstream(&spec).map_err(OpError::Store)?;
                    }
                    arm
                }
            };
            (arm, self.persist(&mut g)?)
        };
        self.wait(ticket).await?;
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
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), OpError> {
        self.pool_op(
            name,
            |r, a| r.set_enabled_event(a, enabled),
            |r, a| r.set_enabled(a, enabled, now_ms()),
        )
        .await
    }

    /// Changes an LLM's price.
    ///
    /// # Errors
    /// Unknown name, bad price; the store's error.
    pub async fn set_price(&self, name: &str, price: Price) -> Result<(), OpError> {
        self.pool_op(
            name,
            |r, a| r.set_price_event(a, price),
            |r, a| r.set_price(a, price, now_ms()),
        )
        .await
    }

    /// A change to the LLM `name` of the pool: with Redis the event `event` builds, committed
    /// to the shared stream and folded; with SQLite `apply` on the router. Waits until stored.
    async fn pool_op(
        &self,
        name: &str,
        event: impl Fn(&ServeRouter, ArmId) -> pilot_core::Result<Event>,
        apply: impl FnOnce(&mut ServeRouter, ArmId) -> pilot_core::Result<()>,
    ) -> Result<(), OpError> {
        self.commit_op(|g| {
            let a = self.arm(g, name)?;
            if let Some((router, shared)) = g.shared() {
                return shared
                    .admin(router, now_ms(), |r| {
                        Ok(Some((event(r, a)?, AdminKind::Pool)))
                    })
                    .map(|_| ());
            }
            Ok(apply(&mut g.router, a)?)
        })
        .await
    }

    /// Runs `op` on the router under the lock, queues its events, and waits until they are
    /// stored.
    async fn commit_op(
        &self,
        op: impl FnOnce(&mut Inner) -> Result<(), OpError>,
    ) -> Result<(), OpError> {
        let ticket = {
            let mut g = self.lock()?;
            op(&mut g)?;
            self.persist(&mut g)?
        };
        self.wait(ticket).await
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
    pub async fn set_budget(&self, usd: f64) -> Result<(), OpError> {
        self.commit_op(|g| {
            if let Some((router, shared)) = g.shared() {
                return shared
                    .admin(router, now_ms(), |r| {
                        let units = r.guard().check_budget(usd)?;
                        Ok(Some((
                            Event::BudgetChanged { budget: usd },
                            AdminKind::Budget(units),
                        )))
                    })
                    .map(|_| ());
            }
            Ok(g.router.set_budget(usd, now_ms())?)
        })
        .await
    }

    /// Starts a new budget period (USD; `None`: the current budget).
    ///
    /// # Errors
    /// As [`set_budget`](Self::set_budget).
    pub async fn new_period(&self, usd: Option<f64>) -> Result<(), OpError> {
        self.commit_op(|g| {
            if let Some((router, shared)) = g.shared() {
                return shared
                    .admin(router, now_ms(), |r| {
                        let usd = usd.unwrap_or_else(|| r.guard().to_currency(r.ledger().budget));
                        let units = r.guard().check_period(usd)?;
                        Ok(Some((
                            Event::NewPeriod { budget: usd },
                            AdminKind::Period(units, None),
                        )))
                    })
                    .map(|_| ());
            }
            let usd = usd.unwrap_or_else(|| g.router.guard().to_currency(g.router.ledger().budget));
            Ok(g.router.new_period(usd, now_ms())?)
        })
        .await
    }

    /// Starts a new period when the configured period length has passed; expires old holds.
    ///
    /// # Errors
    /// The router's or store's error.
    pub async fn tick(&self) -> Result<(), OpError> {
        let now = now_ms();
        let period = self.config.budget.period_secs;
        {
            let mut g = self.lock()?;
            if let Some((router, shared)) = g.shared() {
                shared.tick(router)?;
                let Some(idx) = (now / 1000).checked_div(period) else {
                    return Ok(());
                };
                if shared.period()? == Some(idx) {
                    return Ok(());
                }
                // Idempotent per period index: of all replicas ticking, one starts it.
                shared.admin(router, now, |r| {
                    let usd = r.guard().to_currency(r.ledger().budget);
                    let units = r.guard().check_period(usd)?;
                    Ok(Some((
                        Event::NewPeriod { budget: usd },
                        AdminKind::Period(units, Some(idx)),
                    )))
                })?;
                return Ok(());
            }
        }
        let (ticket, roll) = {
            let mut g = self.lock()?;
            g.router.expire_due(now)?;
            let mut roll = None;
            if let Some(idx) = (now / 1000).checked_div(period)
                && let Some(store) = g.store()
            {
                let stored: u64 = store
                    .meta("period")
                    .map_err(OpError::Store)?
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(idx);
                if stored != idx {
                    let usd = g.router.guard().to_currency(g.router.ledger().budget);
                    g.router.new_period(usd, now)?;
                    roll = Some(idx);
                }
            }
            (self.persist(&mut g)?, roll)
        };
        self.wait(ticket).await?;
        // Settlements queued without waiting (streams' ends) are stored at least this often.
        self.flush()?;
        // The new period is stored: now remember which one it is.
        if let Some(idx) = roll
            && let Some(store) = self.lock()?.store()
        {
            store
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
        let Ok(mut g) = self.lock() else {
            return json!({"error": "router lock poisoned"});
        };
        if let Some((router, shared)) = g.shared() {
            // What the other replicas did, too (best effort: the folded state otherwise).
            let _ = shared.catch_up(router);
        }
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
        let (e50, e99, emax, en) = self.metrics.embed_ring.percentiles();
        let (r50, r99, rmax, rn) = self.metrics.route_ring.percentiles();
        let (c50, c99, cmax, cn) = self.metrics.commit_ring.percentiles();
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
                "embed": {"p50": e50, "p99": e99, "max": emax, "samples": en},
                "route": {"p50": r50, "p99": r99, "max": rmax, "samples": rn},
                "commit_wait": {"p50": c50, "p99": c99, "max": cmax, "samples": cn},
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
    pub async fn snapshot_now(&self) -> Result<(), OpError> {
        {
            let mut g = self.lock()?;
            if let Some((router, shared)) = g.shared() {
                return shared.snapshot_now(router);
            }
            let ticket = self.persist(&mut g)?;
            let bytes = g.router.save()?;
            if let Some(commit) = &self.commit {
                commit
                    .queue(Item::Snapshot(ticket, bytes))
                    .map_err(OpError::Store)?;
            }
            g.snap_seq = ticket;
        }
        self.flush()
    }

    /// With the Redis backend: folds what other replicas appended, then returns the router's
    /// snapshot bytes and the number of events folded (tests compare replicas with it).
    ///
    /// # Errors
    /// Redis errors; the SQLite backend.
    pub fn fold_and_save(&self) -> Result<(u64, Vec<u8>), OpError> {
        let mut g = self.lock()?;
        let Some((router, shared)) = g.shared() else {
            return Err(OpError::Bad(
                "fold_and_save: not a shared (Redis) state".into(),
            ));
        };
        shared.catch_up(router)?;
        Ok((router.seq(), router.save()?))
    }

    /// With the Redis backend: the shared ledger as Redis holds it (budget, spent, reserved,
    /// USD) and the same from this replica's folded router.
    ///
    /// # Errors
    /// Redis errors; the SQLite backend.
    pub fn shared_ledgers(&self) -> Result<([u64; 3], [u64; 3]), OpError> {
        let mut g = self.lock()?;
        let Some((router, shared)) = g.shared() else {
            return Err(OpError::Bad(
                "shared_ledgers: not a shared (Redis) state".into(),
            ));
        };
        shared.catch_up(router)?;
        let (b, s, r) = shared.ledger()?;
        let l = router.ledger();
        Ok(([b, s, r], [l.budget, l.spent, l.reserved]))
    }
}

/// Rebuilds the router of a state directory twice, from its newest snapshot plus the events
/// after it and from every event since the start, and checks both give the same bytes: the
/// recovered state is the replay of the stored events.
///
/// # Errors
/// A damaged state, or the two differing.
pub fn check_replay(config: &Config) -> Result<u64> {
    if let StateBackend::Redis(_) = config.state.backend() {
        bail!(
            "check-replay reads a SQLite state; with Redis every replica folds the shared stream (compare the replicas' snapshots instead)"
        );
    }
    let embedder = ServeEmbedder::open(&config.embedder)?;
    let prior = load_prior(config, &embedder)?;
    let dim = embedder.dim();
    let store = Store::open(&config.state.dir, false)?;
    let genesis: Vec<UpstreamConfig> = serde_json::from_str(
        &store
            .meta("genesis")?
            .ok_or_else(|| anyhow!("no state in {}", config.state.dir.display()))?,
    )?;
    let mut recovered = build_router(config, prior.as_ref(), &genesis, dim)?;
    if let Some((_, bytes)) = store.latest_snapshot()? {
        recovered.restore(&bytes)?;
    }
    for r in store.events_from(recovered.seq())? {
        recovered.apply(&r)?;
    }
    let mut replayed = build_router(config, prior.as_ref(), &genesis, dim)?;
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
        ("pilot" | "pilot-trust", Some(p)) => match p.theta(name) {
            Some(t) => ArmStart::Vector(t.to_vec()),
            None => ArmStart::MeanOfOthers,
        },
        _ => ArmStart::Neutral,
    }
}

/// The config's prior, checked against the embedder: fitted in its embedding space, on
/// vectors of its dimension.
///
/// # Errors
/// The file does not load, or was fitted for another embedder or dimension (the message names
/// `policy.prior` and both).
pub fn load_prior(config: &Config, embedder: &ServeEmbedder) -> Result<Option<Prior>> {
    let Some(path) = &config.policy.prior else {
        return Ok(None);
    };
    let prior = Prior::load(
        path,
        Expect {
            embedder_id: Some(embedder.id()),
            d_in: Some(embedder.dim()),
        },
    )
    .map_err(|e| {
        anyhow!(
            "config key `policy.prior` ({}): {e} (the embedder is {} with dimension {})",
            path.display(),
            embedder.id(),
            embedder.dim()
        )
    })?;
    Ok(Some(prior))
}
