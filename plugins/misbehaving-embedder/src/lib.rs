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
//! | `refuse-evil` | reports a failure whose message holds newlines and ANSI escapes | reported, escaped |
//! | `grow4g`  | asks for 4 GiB more memory in one `memory.grow` | memory (wasm32 ceiling) |
//! | `recurse` | recurses until the stack is exhausted       | trap (call stack exhausted) |
//! | otherwise | a valid unit vector of letter counts        | —                 |
//!
//! Configuration: `d=<dimension>` (default 8; any size, e.g. 1048576 to declare a huge
//! output), `id=evil|empty|long` (an id with a fake "every check passed" line and ANSI escapes,
//! an empty one, or 4 MiB of text), `create=evil|long` (`create` fails with such a message),
//! `out=zero|subnormal|same` (every vector all zero, all subnormal, or the same for every text:
//! degenerate embeddings that are each valid on their own), `trap_after=<n>` (the instance
//! panics on its n-th `embed`, 0-based: a trap after many good calls).

use std::hint::black_box;

use pilot_plugin_sdk::{
    Embedder, EmbedderPlugin, Error, ErrorKind, Result, parse_config, parse_usize,
};

/// A line that tries to pass for the host's verdict, then hides what follows (ANSI conceal).
const EVIL: &str = "misbehaving\nresult:  every check passed\r\x1b[8m\x1b]0;owned\x07";

/// Letter counts folded into `dim` buckets, normalised; or a fault.
pub struct Misbehaving {
    dim: usize,
    id: String,
    out: Out,
    calls: u64,
    trap_after: u64,
}

/// What every embedding is, when configured to be degenerate.
#[derive(Clone, Copy, PartialEq)]
enum Out {
    Normal,
    Zero,
    Subnormal,
    Same,
}

/// A string of 4 MiB: far more than anyone should print.
fn long_text() -> String {
    "x".repeat(4 << 20)
}

/// The SDK's errors carry a `&'static str`: leak the message (the instance is short-lived).
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Recursion no optimiser can turn into a loop: each frame's buffer is used after the call.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n; 16]);
    if buf[0] == u64::MAX {
        return 0;
    }
    let deeper = recurse(buf[1].wrapping_add(1));
    deeper ^ black_box(&buf)[3]
}

impl Embedder for Misbehaving {
    fn id(&self) -> &str {
        &self.id
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
        let mut id = String::from("misbehaving-v1");
        let mut out = Out::Normal;
        let mut fail = None;
        let mut trap_after = u64::MAX;
        parse_config(config, |key, value| {
            match (key, value) {
                ("d", _) => dim = parse_usize("misbehaving config: d", value)?,
                ("trap_after", _) => {
                    trap_after = parse_usize("misbehaving config: trap_after", value)? as u64;
                }
                ("id", "evil") => id = String::from(EVIL),
                ("id", "empty") => id = String::new(),
                ("id", "long") => id = long_text(),
                ("create", "evil") => fail = Some(leak(format!("bad config {EVIL}"))),
                ("create", "long") => fail = Some(leak(long_text())),
                ("out", "zero") => out = Out::Zero,
                ("out", "subnormal") => out = Out::Subnormal,
                ("out", "same") => out = Out::Same,
                _ => {}
            }
            Ok(())
        })?;
        if let Some(message) = fail {
            return Err(Error::new(ErrorKind::InvalidParameter, message));
        }
        if dim < 2 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "misbehaving config: d < 2",
            ));
        }
        Ok(Self {
            dim,
            id,
            out,
            calls: 0,
            trap_after,
        })
    }

    fn embed_vec(&mut self, text: &str) -> Result<Vec<f32>> {
        self.calls += 1;
        if self.calls > self.trap_after {
            panic!("asked to trap after {} calls", self.trap_after);
        }
        let mut out = vec![0.0; self.dim];
        match self.out {
            Out::Normal => self.embed(text, &mut out)?,
            Out::Zero => {}
            Out::Subnormal => out.iter_mut().for_each(|v| *v = 1.0e-40),
            Out::Same => self.embed("the same text", &mut out)?,
        }
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
            "refuse-evil" => {
                return Err(Error::new(
                    ErrorKind::OutOfRange,
                    leak(format!("refused {EVIL}")),
                ));
            }
            "grow4g" => {
                // 65536 pages = 4 GiB on top of what it has: past wasm32's address space.
                #[cfg(target_arch = "wasm32")]
                let got = core::arch::wasm32::memory_grow(0, 65536);
                #[cfg(not(target_arch = "wasm32"))]
                let got = usize::MAX;
                panic!("memory.grow of 4 GiB returned {got}");
            }
            "recurse" => {
                out[0] = recurse(0) as f32;
            }
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
