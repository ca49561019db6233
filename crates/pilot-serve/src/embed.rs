//! The embedder of `pilot serve` (`[embedder]`): the hashing embedder inline, or all-MiniLM-L6-v2
//! (feature `minilm`) or a WebAssembly embedder plugin (feature `plugins`) on a worker thread
//! that batches the texts of concurrent requests. Texts are embedded before the router's lock
//! is taken, so a slow model never holds up the decisions, settlements and feedback of others.

use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Result, anyhow};
use pilot_embed::HashingEmbedder;

use crate::config::EmbedderConfig;

/// One text waiting for its vector, and where the answer goes.
#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
struct Job {
    text: String,
    reply: tokio::sync::oneshot::Sender<Result<Vec<f32>, String>>,
}

/// Embeds a batch of texts into `out` (row `i` for text `i`); the error says why.
#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
type BatchFn = Box<dyn FnMut(&[String], &mut [f32]) -> Result<(), String> + Send>;

/// A model on a thread of its own: each round takes every text queued meanwhile (up to
/// `max_batch`) and embeds them in one call.
#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
struct Worker {
    jobs: mpsc::Sender<Job>,
}

#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
impl Worker {
    fn start(name: &str, dim: usize, max_batch: usize, mut embed: BatchFn) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("pilot-embed-{name}"))
            .spawn(move || {
                let mut texts = Vec::with_capacity(max_batch);
                let mut replies = Vec::with_capacity(max_batch);
                let mut out = Vec::new();
                // Ends when the engine (every sender) is gone.
                while let Ok(first) = rx.recv() {
                    texts.push(first.text);
                    replies.push(first.reply);
                    while texts.len() < max_batch {
                        match rx.try_recv() {
                            Ok(job) => {
                                texts.push(job.text);
                                replies.push(job.reply);
                            }
                            Err(_) => break,
                        }
                    }
                    out.clear();
                    out.resize(texts.len() * dim, 0.0);
                    if embed(&texts, &mut out).is_ok() {
                        for (reply, row) in replies.drain(..).zip(out.chunks_exact(dim)) {
                            let _ = reply.send(Ok(row.to_vec()));
                        }
                    } else {
                        // One text may spoil a batch: each alone, so only it fails.
                        for (text, reply) in texts.iter().zip(replies.drain(..)) {
                            let mut row = vec![0.0f32; dim];
                            let r = embed(std::slice::from_ref(text), &mut row).map(|()| row);
                            let _ = reply.send(r);
                        }
                    }
                    texts.clear();
                }
            })
            .map_err(|e| anyhow!("cannot start the embedder thread: {e}"))?;
        Ok(Self { jobs: tx })
    }

    async fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job {
                text: text.to_owned(),
                reply,
            })
            .map_err(|_| "the embedder thread has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the embedder thread dropped the request".to_string())?
    }
}

#[cfg_attr(not(any(feature = "minilm", feature = "plugins")), allow(dead_code))]
enum Kind {
    Hash,
    Worker(Worker),
}

/// The server's embedder: its id, dimension and how it runs.
pub struct ServeEmbedder {
    kind: Kind,
    id: String,
    dim: usize,
    label: String,
}

impl ServeEmbedder {
    /// Starts the embedder the config names (loads the model, instantiates the plugin).
    ///
    /// # Errors
    /// A kind this build lacks, a missing or damaged model, a plugin that does not load; the
    /// message names the config key.
    pub fn open(config: &EmbedderConfig) -> Result<Self> {
        match config.kind.as_str() {
            "hash" => {
                let e = HashingEmbedder::new(config.dim)
                    .map_err(|e| anyhow!("config key `embedder.dim`: {e}"))?;
                Ok(Self {
                    id: pilot_core::Embedder::id(&e).to_string(),
                    dim: config.dim,
                    label: format!("hash:{}", config.dim),
                    kind: Kind::Hash,
                })
            }
            "minilm" => open_minilm(config),
            "plugin" => open_plugin(config),
            other => Err(anyhow!(
                "config key `embedder.kind`: unknown kind {other:?} (hash, minilm or plugin)"
            )),
        }
    }

    /// The embedding-space id (what a prior must have been fitted on).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The dimension of its vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `kind:dim`, as the state's policy fingerprint and versions record it.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Embeds `text`; returns the vector and the time it took (queueing included).
    ///
    /// # Errors
    /// The model's or plugin's error.
    pub async fn embed(&self, text: &str) -> Result<(Vec<f32>, std::time::Duration), String> {
        let t = Instant::now();
        let v = match &self.kind {
            Kind::Hash => {
                let mut v = vec![0.0f32; self.dim];
                pilot_embed::hashing::embed_into(text, &mut v).map_err(|e| e.to_string())?;
                v
            }
            Kind::Worker(w) => w.embed(text).await?,
        };
        if v.len() != self.dim {
            return Err(format!(
                "the embedder returned {} values, {} expected",
                v.len(),
                self.dim
            ));
        }
        Ok((v, t.elapsed()))
    }
}

#[cfg(feature = "minilm")]
fn open_minilm(config: &EmbedderConfig) -> Result<ServeEmbedder> {
    use pilot_minilm::{MiniLm, resolve_model_dir};

    let dir = resolve_model_dir(config.model_dir.as_deref())
        .map_err(|e| anyhow!("config key `embedder.model_dir`: {e}"))?;
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(1, usize::from)
    } else {
        config.threads
    };
    let mut model = MiniLm::load(&dir)
        .map_err(|e| anyhow!("config key `embedder.model_dir`: {e}"))?
        .with_threads(threads);
    let embed: BatchFn = Box::new(move |texts, out| {
        // Split the batch into one encoder batch per thread.
        model.set_batch_size(texts.len().div_ceil(threads));
        model.embed_batch(texts, out).map_err(|e| e.to_string())
    });
    Ok(ServeEmbedder {
        kind: Kind::Worker(Worker::start(
            "minilm",
            MiniLm::DIM,
            config.max_batch,
            embed,
        )?),
        id: MiniLm::ID.to_string(),
        dim: MiniLm::DIM,
        label: format!("minilm:{}", MiniLm::DIM),
    })
}

#[cfg(not(feature = "minilm"))]
fn open_minilm(_: &EmbedderConfig) -> Result<ServeEmbedder> {
    Err(anyhow!(
        "config key `embedder.kind`: \"minilm\" needs the native MiniLM embedder, which this build lacks: rebuild with `--features minilm` (and fetch the model with `cargo xtask fetch-model`)"
    ))
}

#[cfg(feature = "plugins")]
fn open_plugin(config: &EmbedderConfig) -> Result<ServeEmbedder> {
    use pilot_core::Embedder;
    use pilot_plugin_host::{Limits, PluginEmbedder, PluginEngine};

    let path = config.plugin.as_ref().ok_or_else(|| {
        anyhow!("config key `embedder.plugin`: kind = \"plugin\" needs the path of a .wasm embedder plugin")
    })?;
    let compiled = PluginEngine::new(Limits::default())
        .map_err(|e| anyhow!("config key `embedder.plugin`: {e}"))?
        .load_file(path)
        .map_err(|e| anyhow!("config key `embedder.plugin` ({}): {e}", path.display()))?;
    let mut plugin = PluginEmbedder::new(&compiled, &config.plugin_config).map_err(|e| {
        anyhow!(
            "config key `embedder.plugin_config` ({} with {:?}): {e}",
            path.display(),
            config.plugin_config
        )
    })?;
    let (id, dim) = (plugin.id().to_string(), plugin.dim());
    let embed: BatchFn = Box::new(move |texts, out| {
        for (text, row) in texts.iter().zip(out.chunks_exact_mut(dim)) {
            let v = plugin.embed_vec(text).map_err(|e| e.to_string())?;
            row.copy_from_slice(&v);
        }
        Ok(())
    });
    Ok(ServeEmbedder {
        kind: Kind::Worker(Worker::start("plugin", dim, config.max_batch, embed)?),
        id,
        dim,
        label: format!("plugin:{dim}"),
    })
}

#[cfg(not(feature = "plugins"))]
fn open_plugin(_: &EmbedderConfig) -> Result<ServeEmbedder> {
    Err(anyhow!(
        "config key `embedder.kind`: \"plugin\" needs plugin support (wasmtime), which this build lacks: rebuild with `--features plugins`"
    ))
}
