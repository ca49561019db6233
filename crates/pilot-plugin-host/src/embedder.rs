//! An embedder plugin as a [`pilot_core::Embedder`]: outputs validated, traps recovered from.

use pilot_core::{Embedder, Result as CoreResult, check_len};
use wasmtime::component::ResourceAny;

use crate::bindings::embedder::EmbedderPlugin;
use crate::engine::Pre;
use crate::sandbox::Sandbox;
use crate::text::{MAX_ID_CHARS, is_clean, sanitize};
use crate::{CompiledPlugin, PluginError, PluginKind, validate};

struct Live {
    sandbox: Sandbox,
    bindings: EmbedderPlugin,
    model: ResourceAny,
}

/// An embedder running in a plugin: every call is limited (fuel, deadline, memory) and every
/// output is checked (dimension, finite, within [`Limits::output_bound`](crate::Limits)).
///
/// After a trap the instance is dropped and a fresh one is created from the same configuration
/// on the next call; an embedder has no learned state, so nothing is lost.
pub struct PluginEmbedder {
    plugin: CompiledPlugin,
    config: String,
    live: Option<Live>,
    id: String,
    id_problem: Option<String>,
    dim: usize,
    last_error: Option<PluginError>,
    restarts: u64,
}

impl std::fmt::Debug for PluginEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEmbedder")
            .field("plugin", &self.plugin.name())
            .field("id", &self.id)
            .field("dim", &self.dim)
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}

impl PluginEmbedder {
    /// Instantiates `plugin` and creates its model from `config` (plugin-defined; "" = defaults).
    ///
    /// # Errors
    /// [`PluginError::Abi`] when `plugin` is a policy plugin or an export has the wrong type,
    /// [`PluginError::Reported`] when the plugin rejects the configuration,
    /// [`PluginError::Output`] for a zero dimension or one above
    /// [`validate::MAX_EMBED_DIM`], [`PluginError::HostLimit`] for one above the host's
    /// [`Limits::max_embed_dim`](crate::Limits::max_embed_dim), and any sandbox error (fuel,
    /// deadline, memory, trap) raised while starting it.
    ///
    /// The plugin's id is kept escaped and capped ([`crate::text::sanitize`]);
    /// [`id_problem`](Self::id_problem) says whether that changed it or it is empty.
    pub fn new(plugin: &CompiledPlugin, config: &str) -> Result<Self, PluginError> {
        if plugin.kind() != PluginKind::Embedder {
            return Err(PluginError::Abi(format!(
                "{} is a {}, not an embedder-plugin",
                plugin.name(),
                plugin.kind()
            )));
        }
        let mut live = instantiate(plugin, config)?;
        let Live {
            sandbox,
            bindings,
            model,
        } = &mut live;
        let guest = bindings.pilot_plugin_embedder().model();
        let raw_id = sandbox.call("model.id", |s| guest.call_id(s, *model))?;
        let dim = sandbox.call("model.dim", |s| guest.call_dim(s, *model))? as usize;
        validate::embedder_dim(dim)?;
        let max = plugin.limits().max_embed_dim;
        if dim > max {
            return Err(PluginError::HostLimit {
                plugin: plugin.name().to_string(),
                message: format!(
                    "declares embedding dimension {dim}, above the host's limit of {max} \
                     (`Limits::max_embed_dim`; the ABI's ceiling is {})",
                    validate::MAX_EMBED_DIM
                ),
            });
        }
        let chars = raw_id.chars().count();
        let id_problem = if raw_id.is_empty() {
            Some("its id is empty".to_string())
        } else if chars > MAX_ID_CHARS {
            Some(format!(
                "its id has {chars} characters, more than {MAX_ID_CHARS}; it is shown cut"
            ))
        } else if !is_clean(&raw_id, MAX_ID_CHARS) {
            Some(
                "its id holds control or formatting characters (newline, ESC, …); it is shown \
                 escaped"
                    .to_string(),
            )
        } else {
            None
        };
        Ok(Self {
            plugin: plugin.clone(),
            config: config.to_string(),
            live: Some(live),
            id: sanitize(&raw_id, MAX_ID_CHARS),
            id_problem,
            dim,
            last_error: None,
            restarts: 0,
        })
    }

    /// Embeds `text` into a new vector, with the detailed error on failure.
    ///
    /// # Errors
    /// Sandbox errors ([`PluginError::OutOfFuel`], [`Timeout`](PluginError::Timeout),
    /// [`MemoryLimit`](PluginError::MemoryLimit), [`Trap`](PluginError::Trap)),
    /// [`PluginError::Output`] for a wrong length or a NaN, infinite or out-of-range value,
    /// [`PluginError::Reported`] when the plugin refuses the text.
    pub fn embed_vec(&mut self, text: &str) -> Result<Vec<f32>, PluginError> {
        let result = self.embed_unrecorded(text);
        if let Err(e) = &result {
            self.note_failure(e);
        }
        result.map_err(|e| self.remember(e))
    }

    /// What is wrong with the id the plugin gave, if anything: empty, too long, or holding
    /// control characters (then [`Embedder::id`] returns it escaped and cut).
    pub fn id_problem(&self) -> Option<&str> {
        self.id_problem.as_deref()
    }

    /// Checks, before a table of `rows` embeddings is made, that rows × dimension × 4 bytes
    /// stays within [`Limits::output_table_bytes`](crate::Limits::output_table_bytes): what a
    /// plugin declares must not decide how much memory the host takes.
    ///
    /// # Errors
    /// [`PluginError::HostLimit`] naming the plugin, the rows, the dimension and the limit.
    pub fn reserve_rows(&self, rows: usize) -> Result<(), PluginError> {
        let limit = self.plugin.limits().output_table_bytes;
        let row_bytes = self.dim.saturating_mul(4).max(1);
        let bytes = rows.saturating_mul(row_bytes);
        if bytes > limit {
            return Err(PluginError::HostLimit {
                plugin: self.plugin.name().to_string(),
                message: format!(
                    "{rows} rows of embedding dimension {} ({bytes} bytes) would exceed the \
                     host's limit of {limit} bytes for a plugin's outputs \
                     (`Limits::output_table_bytes`); at this dimension at most {} rows fit",
                    self.dim,
                    limit / row_bytes
                ),
            });
        }
        Ok(())
    }

    /// The last detailed error (the trait methods return only its kind).
    pub fn last_error(&self) -> Option<&PluginError> {
        self.last_error.as_ref()
    }

    /// How many times the instance was re-created after a trap.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// The compiled plugin behind this embedder.
    pub fn plugin(&self) -> &CompiledPlugin {
        &self.plugin
    }

    fn embed_unrecorded(&mut self, text: &str) -> Result<Vec<f32>, PluginError> {
        if self.live.is_none() {
            self.restarts += 1;
            let live = instantiate(&self.plugin, &self.config)?;
            self.live = Some(live);
        }
        let Some(Live {
            sandbox,
            bindings,
            model,
        }) = self.live.as_mut()
        else {
            return Err(PluginError::Poisoned("no live instance".into()));
        };
        let guest = bindings.pilot_plugin_embedder().model();
        let out = sandbox
            .call("model.embed", |s| guest.call_embed(s, *model, text))?
            .map_err(|f| f.into_error("model.embed"))?;
        validate::embedding(&out, self.dim, self.plugin.limits().output_bound)?;
        Ok(out)
    }

    fn note_failure(&mut self, e: &PluginError) {
        if e.poisons_instance() {
            // The instance may be mid-way through anything; never call into it again.
            self.live = None;
        }
    }

    fn remember(&mut self, e: PluginError) -> PluginError {
        self.last_error = Some(e.clone());
        e
    }
}

fn instantiate(plugin: &CompiledPlugin, config: &str) -> Result<Live, PluginError> {
    let Pre::Embedder(pre) = &*plugin.pre else {
        return Err(PluginError::Abi(format!(
            "{} is not an embedder-plugin",
            plugin.name()
        )));
    };
    let mut sandbox = Sandbox::new(&plugin.engine, plugin.limits());
    let bindings = sandbox.instantiate(plugin.name(), pre.instance_pre(), |s, instance| {
        EmbedderPlugin::new(s, instance)
    })?;
    let guest = bindings.pilot_plugin_embedder().model();
    let model = sandbox
        .call("model.create", |s| guest.call_create(s, config))?
        .map_err(|f| f.into_error("model.create"))?;
    Ok(Live {
        sandbox,
        bindings,
        model,
    })
}

impl Embedder for PluginEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&mut self, text: &str, out: &mut [f32]) -> CoreResult<()> {
        check_len("PluginEmbedder::embed: out", out, self.dim)?;
        match self.embed_vec(text) {
            Ok(v) => {
                out.copy_from_slice(&v);
                Ok(())
            }
            Err(e) => Err(e.to_core("PluginEmbedder::embed")),
        }
    }
}
