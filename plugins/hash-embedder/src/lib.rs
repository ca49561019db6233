//! The hashing embedder as a plugin: pilot-embed's `HashingEmbedder`, bit for bit.
//!
//! Configuration: `d=<dimension>` (default 256).

use pilot_embed::hashing::HashingEmbedder;
use pilot_plugin_sdk::{Embedder, EmbedderPlugin, Result, parse_config, parse_usize};

/// The native embedder, unchanged; the plugin only adds a constructor from a config string.
pub struct HashPlugin(HashingEmbedder);

impl Embedder for HashPlugin {
    fn id(&self) -> &str {
        self.0.id()
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn embed(&mut self, text: &str, out: &mut [f32]) -> Result<()> {
        self.0.embed(text, out)
    }
}

impl EmbedderPlugin for HashPlugin {
    fn create(config: &str) -> Result<Self> {
        let mut dim = 256;
        parse_config(config, |key, value| match key {
            "d" | "dim" => {
                dim = parse_usize("hash-embedder config: d", value)?;
                Ok(())
            }
            _ => Err(pilot_plugin_sdk::Error::new(
                pilot_plugin_sdk::ErrorKind::InvalidParameter,
                "hash-embedder config: unknown key (expected d)",
            )),
        })?;
        Ok(Self(HashingEmbedder::new(dim)?))
    }
}

pilot_plugin_sdk::export_embedder!(HashPlugin);
