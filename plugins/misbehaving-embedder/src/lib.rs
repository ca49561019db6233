//! An embedder plugin that misbehaves on request, for the host's tests: the text picks the fault.
//!
//! | text      | behaviour                                   | host error        |
//! |-----------|---------------------------------------------|-------------------|
//! | `loop`    | spins forever                               | out of fuel / timeout |
//! | `alloc`   | allocates 1 MiB blocks until refused        | memory limit      |
//! | `panic`   | panics (a trap)                             | trap              |
//! | `dim`     | returns one value too few                   | output (dimension)|
//! | `nan`     | returns a NaN                               | output (NaN)      |
//! | `huge`    | returns 1e30                                | output (range)    |
//! | `refuse`  | reports a failure itself                    | reported          |
//! | otherwise | a valid unit vector of letter counts        | —                 |
//!
//! Configuration: `d=<dimension>` (default 8).

use std::hint::black_box;

use pilot_plugin_sdk::{
    Embedder, EmbedderPlugin, Error, ErrorKind, Result, parse_config, parse_usize,
};

/// Letter counts folded into `dim` buckets, normalised; or a fault.
pub struct Misbehaving {
    dim: usize,
}

impl Embedder for Misbehaving {
    fn id(&self) -> &str {
        "misbehaving-v1"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&mut self, text: &str, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|v| *v = 0.0);
        for b in text.bytes() {
            out[usize::from(b) % self.dim] += 1.0;
        }
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt().max(1.0);
        out.iter_mut().for_each(|v| *v /= norm);
        Ok(())
    }
}

impl EmbedderPlugin for Misbehaving {
    fn create(config: &str) -> Result<Self> {
        let mut dim = 8;
        parse_config(config, |key, value| {
            if key == "d" {
                dim = parse_usize("misbehaving config: d", value)?;
            }
            Ok(())
        })?;
        if dim < 2 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "misbehaving config: d < 2",
            ));
        }
        Ok(Self { dim })
    }

    fn embed_vec(&mut self, text: &str) -> Result<Vec<f32>> {
        let mut out = vec![0.0; self.dim];
        self.embed(text, &mut out)?;
        match text {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "panic" => panic!("asked to panic"),
            "dim" => {
                out.pop();
            }
            "nan" => out[0] = f32::NAN,
            "huge" => out[0] = 1.0e30,
            "refuse" => {
                return Err(Error::new(
                    ErrorKind::OutOfRange,
                    "misbehaving: refused the text",
                ));
            }
            _ => {}
        }
        Ok(out)
    }
}

pilot_plugin_sdk::export_embedder!(Misbehaving);
