//! The `pilot serve` configuration file (TOML): parsed, then checked so that a bad file gives
//! one error naming the key and what is wrong with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pilot_router::Exploration;
use serde::{Deserialize, Serialize};

/// A configuration error: the key (dotted path) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The key, e.g. `upstreams[2].base_url`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// One upstream LLM (an OpenAI-compatible endpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The LLM's name in the pool (what clients may ask for, what `model` says in answers).
    pub name: String,
    /// OpenAI-compatible base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The environment variable holding its API key (none: no `Authorization` header).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The model id sent upstream (default: `name`).
    #[serde(default)]
    pub model: Option<String>,
    /// USD per million input tokens.
    pub input_per_mtok: f64,
    /// USD per million output tokens.
    pub output_per_mtok: f64,
    /// Most output tokens a call may produce (`max_tokens` is clamped to it).
    pub max_output_tokens: u64,
}

impl UpstreamConfig {
    /// The model id sent upstream.
    pub fn model_id(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.name)
    }

    /// Checks the fields; `key` names this entry in errors.
    ///
    /// # Errors
    /// The first bad field.
    pub fn check(&self, key: &str) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() || self.name == "pilot" {
            return Err(bad(
                format!("{key}.name"),
                "must be a non-empty name other than \"pilot\" (that name routes)",
            ));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(bad(
                format!("{key}.base_url"),
                format!(
                    "must start with http:// or https://, found {:?}",
                    self.base_url
                ),
            ));
        }
        for (field, v) in [
            ("input_per_mtok", self.input_per_mtok),
            ("output_per_mtok", self.output_per_mtok),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(bad(
                    format!("{key}.{field}"),
                    format!("must be a finite price >= 0 (USD per million tokens), found {v}"),
                ));
            }
        }
        if self.max_output_tokens == 0 || self.max_output_tokens > 10_000_000 {
            return Err(bad(
                format!("{key}.max_output_tokens"),
                format!("must be in 1..=10000000, found {}", self.max_output_tokens),
            ));
        }
        if let Some(env) = &self.api_key_env
            && env.trim().is_empty()
        {
            return Err(bad(
                format!("{key}.api_key_env"),
                "must name an environment variable (or be left out)",
            ));
        }
        Ok(())
    }

    /// The router's price of this upstream.
    pub fn price(&self) -> pilot_router::Price {
        pilot_router::Price {
            input_per_mtok: self.input_per_mtok,
            output_per_mtok: self.output_per_mtok,
            max_output_tokens: self.max_output_tokens,
        }
    }
}

/// The `[server]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer keys accepted from clients (empty: no client authentication).
    #[serde(default)]
    pub client_keys: Vec<String>,
    /// Bearer keys accepted on `/admin/*` (empty: the admin endpoints are off).
    #[serde(default)]
    pub admin_keys: Vec<String>,
    /// Largest request body accepted, bytes.
    #[serde(default = "default_body")]
    pub max_body_bytes: usize,
    /// Seconds an upstream may take to answer (whole call; for streams, to the first byte
    /// and then between chunks).
    #[serde(default = "default_timeout")]
    pub upstream_timeout_secs: f64,
    /// Calls per request at most: the first and the retries on other LLMs after failures.
    #[serde(default = "default_attempts")]
    pub max_attempts: usize,
    /// Seed of the router's random draws (exploration), so runs replay.
    #[serde(default)]
    pub seed: u64,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_body() -> usize {
    1 << 20
}
fn default_timeout() -> f64 {
    60.0
}
fn default_attempts() -> usize {
    3
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            client_keys: Vec::new(),
            admin_keys: Vec::new(),
            max_body_bytes: default_body(),
            upstream_timeout_secs: default_timeout(),
            max_attempts: default_attempts(),
            seed: 0,
        }
    }
}

/// The `[embedder]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    /// `hash` (built in), `minilm` (feature `minilm`) or `plugin` (feature `plugins`).
    #[serde(default = "default_embedder")]
    pub kind: String,
    /// Output dimension of the hashing embedder (the others have their own).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// `minilm`: the model directory (default `$PILOT_MODEL_DIR`, else the cache directory
    /// `cargo xtask fetch-model` fills).
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// `plugin`: the embedder plugin (a `.wasm` component).
    #[serde(default)]
    pub plugin: Option<PathBuf>,
    /// `plugin`: its configuration string (plugin-defined, e.g. "d=64").
    #[serde(default)]
    pub plugin_config: String,
    /// `minilm` / `plugin`: most texts of concurrent requests embedded in one call.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// `minilm`: encoder threads (0: every CPU).
    #[serde(default)]
    pub threads: usize,
}

fn default_embedder() -> String {
    "hash".into()
}
fn default_dim() -> usize {
    32
}
fn default_max_batch() -> usize {
    32
}

impl Default for EmbedderConfig {
    fn default() -> Self {
        Self {
            kind: default_embedder(),
            dim: default_dim(),
            model_dir: None,
            plugin: None,
            plugin_config: String::new(),
            max_batch: default_max_batch(),
            threads: 0,
        }
    }
}

impl EmbedderConfig {
    /// Checks the fields.
    ///
    /// # Errors
    /// The first bad field.
    pub fn check(&self) -> Result<(), ConfigError> {
        match self.kind.as_str() {
            "hash" => {
                if self.dim == 0 || self.dim > 4096 {
                    return Err(bad("embedder.dim", "must be in 1..=4096"));
                }
            }
            "minilm" => {
                if !cfg!(feature = "minilm") {
                    return Err(bad(
                        "embedder.kind",
                        "\"minilm\" is not in this build: rebuild with `--features minilm` (pilot-serve or pilot)",
                    ));
                }
            }
            "plugin" => {
                if !cfg!(feature = "plugins") {
                    return Err(bad(
                        "embedder.kind",
                        "\"plugin\" is not in this build: rebuild with `--features plugins` (pilot-serve or pilot)",
                    ));
                }
                if self.plugin.is_none() {
                    return Err(bad(
                        "embedder.plugin",
                        "kind = \"plugin\" needs the path of a .wasm embedder plugin",
                    ));
                }
            }
            other => {
                return Err(bad(
                    "embedder.kind",
                    format!("must be \"hash\", \"minilm\" or \"plugin\", found {other:?}"),
                ));
            }
        }
        if self.max_batch == 0 || self.max_batch > 1024 {
            return Err(bad("embedder.max_batch", "must be in 1..=1024"));
        }
        if self.threads > 256 {
            return Err(bad("embedder.threads", "must be in 0..=256 (0: every CPU)"));
        }
        Ok(())
    }
}

/// The `[policy]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `linucb` (arms start at zero), `pilot` (arms start at the prior's vectors, weight λ) or
    /// `pilot-trust` (as `pilot`, each LLM's prior weight learned from how well the prior
    /// predicts its rewards; an LLM the prior has no vector for starts at a small weight).
    #[serde(default = "default_policy")]
    pub kind: String,
    /// Exploration weight α ≥ 0.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Ridge strength λ > 0.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// Forgetting factor γ in (0, 1] (1: no forgetting).
    #[serde(default = "default_discount")]
    pub discount: f64,
    /// A prior file (`pilot prior fit`): its projection maps embeddings to contexts, and with
    /// `kind = "pilot"` its per-LLM vectors start the arms.
    #[serde(default)]
    pub prior: Option<PathBuf>,
    /// Output tokens the cost estimate assumes per call (the hold always uses the maximum).
    #[serde(default = "default_expected_output")]
    pub expected_output_tokens: u64,
}

fn default_policy() -> String {
    "linucb".into()
}
fn default_alpha() -> f64 {
    0.5
}
fn default_lambda() -> f64 {
    1.0
}
fn default_discount() -> f64 {
    1.0
}
fn default_expected_output() -> u64 {
    256
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            kind: default_policy(),
            alpha: default_alpha(),
            lambda: default_lambda(),
            discount: default_discount(),
            prior: None,
            expected_output_tokens: default_expected_output(),
        }
    }
}

/// The `[exploration]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplorationConfig {
    /// `argmax`, `epsilon` or `softmax`.
    #[serde(default = "default_exploration")]
    pub kind: String,
    /// ε for `epsilon`.
    #[serde(default = "default_epsilon")]
    pub epsilon: f64,
    /// Temperature for `softmax`.
    #[serde(default = "default_temperature")]
    pub temperature: f64,
}

fn default_exploration() -> String {
    "argmax".into()
}
fn default_epsilon() -> f64 {
    0.05
}
fn default_temperature() -> f64 {
    0.1
}

impl Default for ExplorationConfig {
    fn default() -> Self {
        Self {
            kind: default_exploration(),
            epsilon: default_epsilon(),
            temperature: default_temperature(),
        }
    }
}

/// The `[budget]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// The budget of a period, USD.
    pub usd: f64,
    /// Length of a budget period in seconds (0: one period until an admin starts a new one).
    #[serde(default)]
    pub period_secs: u64,
    /// Requests expected per period: the pacing policy's target spend per request is
    /// `usd / expected_requests`.
    #[serde(default = "default_expected_requests")]
    pub expected_requests: u64,
    /// The pacing policy's starting price, relative (0.1 as in `pilot simulate`).
    #[serde(default = "default_pacing_price")]
    pub pacing_price: f64,
    /// Step of the pacing price update.
    #[serde(default = "default_pacing_step")]
    pub pacing_step: f64,
}

fn default_expected_requests() -> u64 {
    10_000
}
fn default_pacing_price() -> f64 {
    0.1
}
fn default_pacing_step() -> f64 {
    0.05
}

/// The `[state]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Where the state lives: `"sqlite"` (the default, in `dir`), `"sqlite:DIR"` (the same,
    /// naming the directory) or `"redis://HOST:PORT/DB"` (shared by every replica that names
    /// the same database: one budget, one learned state; see `docs/serve.md`).
    #[serde(default = "default_backend")]
    pub backend: String,
    /// Directory of the SQLite database (`pilot.sqlite`); not used with a Redis backend.
    #[serde(default)]
    pub dir: PathBuf,
    /// A snapshot of the router every this many events.
    #[serde(default = "default_snapshot_every")]
    pub snapshot_every: u64,
    /// Seconds a decision waits for its settlement and feedback; an unsettled hold is charged
    /// in full when it expires (after a crash, open holds stay reserved until then).
    #[serde(default = "default_ttl")]
    pub feedback_window_secs: u64,
    /// `normal` (survives a process crash) or `full` (also a power loss; slower).
    #[serde(default = "default_sync")]
    pub sync: String,
}

fn default_backend() -> String {
    "sqlite".into()
}

/// Where the state lives (from `state.backend`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateBackend {
    /// SQLite in `state.dir`.
    Sqlite,
    /// A Redis database shared by replicas (its URL).
    Redis(String),
}

impl StateConfig {
    /// The backend `state.backend` names (checked by [`Config::check`]).
    pub fn backend(&self) -> StateBackend {
        if is_redis_url(&self.backend) {
            StateBackend::Redis(self.backend.clone())
        } else {
            StateBackend::Sqlite
        }
    }

    /// Reads `sqlite:DIR` into `dir`.
    fn resolve(&mut self) -> Result<(), ConfigError> {
        let b = self.backend.trim();
        if b == "sqlite" || is_redis_url(b) {
            return Ok(());
        }
        if let Some(dir) = b.strip_prefix("sqlite:") {
            if dir.is_empty() {
                return Err(bad("state.backend", "`sqlite:` must name a directory"));
            }
            if !self.dir.as_os_str().is_empty() && self.dir != Path::new(dir) {
                return Err(bad(
                    "state.backend",
                    format!(
                        "names the directory {dir:?} and `state.dir` names {:?}: give one",
                        self.dir
                    ),
                ));
            }
            self.dir = PathBuf::from(dir);
            return Ok(());
        }
        Err(bad(
            "state.backend",
            format!(
                "{b:?}: must be \"sqlite\" (with `state.dir`), \"sqlite:DIR\" or \"redis://HOST:PORT/DB\""
            ),
        ))
    }
}

fn is_redis_url(s: &str) -> bool {
    s.strip_prefix("redis://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

fn default_snapshot_every() -> u64 {
    10_000
}
fn default_ttl() -> u64 {
    3600
}
fn default_sync() -> String {
    "normal".into()
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[[upstreams]]`.
    pub upstreams: Vec<UpstreamConfig>,
    /// `[embedder]`.
    #[serde(default)]
    pub embedder: EmbedderConfig,
    /// `[policy]`.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[exploration]`.
    #[serde(default)]
    pub exploration: ExplorationConfig,
    /// `[budget]`.
    pub budget: BudgetConfig,
    /// `[state]`.
    pub state: StateConfig,
}

impl Config {
    /// Reads and checks a config file; relative paths in it are taken from its directory.
    ///
    /// # Errors
    /// I/O, TOML syntax (with the key) or a bad value.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("(file)", format!("cannot read {}: {e}", path.display())))?;
        let mut config = Self::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if config.state.dir.is_relative() {
            config.state.dir = base.join(&config.state.dir);
        }
        if let Some(p) = &config.policy.prior
            && p.is_relative()
        {
            config.policy.prior = Some(base.join(p));
        }
        for p in [&mut config.embedder.model_dir, &mut config.embedder.plugin]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(config)
    }

    /// Parses and checks TOML text.
    ///
    /// # Errors
    /// TOML syntax or a bad value, naming the key.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config: Self = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            // The toml error names unknown and missing fields in its message; its span gives
            // the place. Name the key from the message when it has one.
            let key = e
                .span()
                .and_then(|s| text.get(s))
                .map(|s| s.split(['=', '\n']).next().unwrap_or("").trim().to_string())
                .filter(|s| !s.is_empty() && s.len() < 80)
                .unwrap_or_else(|| "(file)".into());
            bad(key, msg)
        })?;
        config.state.resolve()?;
        config.check()?;
        Ok(config)
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first bad value.
    pub fn check(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        s.listen.parse::<SocketAddr>().map_err(|e| {
            bad(
                "server.listen",
                format!("must be an address like 127.0.0.1:8080 ({e})"),
            )
        })?;
        if s.max_body_bytes < 1024 || s.max_body_bytes > (64 << 20) {
            return Err(bad("server.max_body_bytes", "must be in 1024..=67108864"));
        }
        if !(s.upstream_timeout_secs > 0.0) || s.upstream_timeout_secs > 3600.0 {
            return Err(bad(
                "server.upstream_timeout_secs",
                "must be in (0, 3600] seconds",
            ));
        }
        if s.max_attempts == 0 || s.max_attempts > 10 {
            return Err(bad("server.max_attempts", "must be in 1..=10"));
        }
        for (i, k) in s.client_keys.iter().enumerate() {
            if k.len() < 8 {
                return Err(bad(
                    format!("server.client_keys[{i}]"),
                    "a key must have at least 8 characters",
                ));
            }
        }
        for (i, k) in s.admin_keys.iter().enumerate() {
            if k.len() < 8 {
                return Err(bad(
                    format!("server.admin_keys[{i}]"),
                    "a key must have at least 8 characters",
                ));
            }
        }
        if self.upstreams.is_empty() {
            return Err(bad(
                "upstreams",
                "at least one [[upstreams]] entry is needed",
            ));
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            u.check(&format!("upstreams[{i}]"))?;
            if self.upstreams[..i].iter().any(|o| o.name == u.name) {
                return Err(bad(
                    format!("upstreams[{i}].name"),
                    format!("{:?} appears twice", u.name),
                ));
            }
        }
        self.embedder.check()?;
        let p = &self.policy;
        match p.kind.as_str() {
            "linucb" => {}
            kind @ ("pilot" | "pilot-trust") => {
                if p.prior.is_none() {
                    return Err(bad(
                        "policy.prior",
                        format!("kind = {kind:?} needs a prior file (or use kind = \"linucb\")"),
                    ));
                }
                if kind == "pilot-trust" && p.discount < 1.0 {
                    return Err(bad(
                        "policy.discount",
                        "kind = \"pilot-trust\" learns how far to trust the prior and does not \
                         combine with a discount < 1 (use kind = \"pilot\" for a discount)",
                    ));
                }
            }
            other => {
                return Err(bad(
                    "policy.kind",
                    format!("must be \"linucb\", \"pilot\" or \"pilot-trust\", found {other:?}"),
                ));
            }
        }
        if !(p.alpha >= 0.0) || !p.alpha.is_finite() {
            return Err(bad("policy.alpha", "must be finite and >= 0"));
        }
        if !(p.lambda > 0.0) || !p.lambda.is_finite() {
            return Err(bad("policy.lambda", "must be finite and > 0"));
        }
        if !(p.discount > 0.0 && p.discount <= 1.0) {
            return Err(bad("policy.discount", "must be in (0, 1]"));
        }
        self.exploration()?;
        let b = &self.budget;
        if !(b.usd >= 0.0) || !b.usd.is_finite() || b.usd > 1e9 {
            return Err(bad("budget.usd", "must be a finite amount in [0, 1e9] USD"));
        }
        if b.expected_requests == 0 {
            return Err(bad("budget.expected_requests", "must be >= 1"));
        }
        if !(b.pacing_price > 0.0) || !b.pacing_price.is_finite() {
            return Err(bad("budget.pacing_price", "must be finite and > 0"));
        }
        if !(b.pacing_step > 0.0) || !b.pacing_step.is_finite() {
            return Err(bad("budget.pacing_step", "must be finite and > 0"));
        }
        let st = &self.state;
        if st.backend() == StateBackend::Sqlite && st.dir.as_os_str().is_empty() {
            return Err(bad("state.dir", "must name a directory"));
        }
        if st.snapshot_every == 0 {
            return Err(bad("state.snapshot_every", "must be >= 1"));
        }
        if st.feedback_window_secs == 0 || st.feedback_window_secs > 365 * 86400 {
            return Err(bad(
                "state.feedback_window_secs",
                "must be in 1..=31536000 seconds",
            ));
        }
        if st.sync != "normal" && st.sync != "full" {
            return Err(bad("state.sync", "must be \"normal\" or \"full\""));
        }
        Ok(())
    }

    /// The exploration rule.
    ///
    /// # Errors
    /// An unknown kind or a bad parameter.
    pub fn exploration(&self) -> Result<Exploration, ConfigError> {
        let e = &self.exploration;
        let x = match e.kind.as_str() {
            "argmax" => Exploration::Argmax,
            "epsilon" => Exploration::EpsilonMix { epsilon: e.epsilon },
            "softmax" => Exploration::Softmax {
                temperature: e.temperature,
            },
            other => {
                return Err(bad(
                    "exploration.kind",
                    format!("must be \"argmax\", \"epsilon\" or \"softmax\", found {other:?}"),
                ));
            }
        };
        x.check().map_err(|err| {
            let key = if e.kind == "epsilon" {
                "exploration.epsilon"
            } else {
                "exploration.temperature"
            };
            bad(key, err.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[upstreams]]
name = "a"
base_url = "http://127.0.0.1:1/v1"
input_per_mtok = 1.0
output_per_mtok = 2.0
max_output_tokens = 100
[budget]
usd = 1.0
[state]
dir = "st"
"#;

    #[test]
    fn good_config_parses() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.upstreams[0].model_id(), "a");
        assert_eq!(c.server.listen, "127.0.0.1:8080");
    }

    #[test]
    fn state_backends_parse() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.state.backend(), StateBackend::Sqlite);
        let c = Config::parse(&GOOD.replace("dir = \"st\"", "backend = \"sqlite:st2\"")).unwrap();
        assert_eq!(
            (c.state.backend(), c.state.dir.as_path()),
            (StateBackend::Sqlite, Path::new("st2"))
        );
        let url = "redis://127.0.0.1:6379/2";
        let c =
            Config::parse(&GOOD.replace("dir = \"st\"", &format!("backend = {url:?}"))).unwrap();
        assert_eq!(c.state.backend(), StateBackend::Redis(url.into()));
    }

    #[test]
    fn the_example_config_parses() {
        let c = Config::parse(include_str!("../pilot.example.toml")).unwrap();
        assert_eq!(c.upstreams.len(), 2);
        assert_eq!(c.budget.period_secs, 86400);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (GOOD.replace("usd = 1.0", "usd = -1.0"), "budget.usd"),
            (
                GOOD.replace("max_output_tokens = 100", "max_output_tokens = 0"),
                "upstreams[0].max_output_tokens",
            ),
            (
                GOOD.replace("http://127.0.0.1:1/v1", "ftp://x"),
                "upstreams[0].base_url",
            ),
            (
                format!("{GOOD}\n[exploration]\nkind = \"epsilon\"\nepsilon = 2.0\n"),
                "exploration.epsilon",
            ),
            (
                format!("{GOOD}\n[policy]\nkind = \"pilot\"\n"),
                "policy.prior",
            ),
        ];
        for (text, key) in cases {
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        for bad_backend in ["postgres://x", "redis://", "sqlite:", "sqlite:other"] {
            let text = GOOD.replace(
                "[state]\n",
                &format!("[state]\nbackend = {bad_backend:?}\n"),
            );
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(e.key, "state.backend", "{bad_backend}: {e}");
        }
        let e = Config::parse(&GOOD.replace("usd = 1.0", "usd = 1.0\nbogus = 3")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = Config::parse(&GOOD.replace("[budget]\nusd = 1.0\n", "")).unwrap_err();
        assert!(e.to_string().contains("budget"), "{e}");
    }
}
