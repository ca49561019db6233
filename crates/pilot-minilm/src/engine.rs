//! The encoder's forward pass on packed weights: token ids in, one hidden state per real
//! token out, for a batch of sequences stored back to back (no padding rows at all).
//!
//! Same arithmetic as the candle graph in `bert.rs` (the reference a test compares against):
//! embeddings + LayerNorm, then per layer self-attention (scores scaled by 1/√head_dim,
//! softmax over the sequence's own keys only), residual + LayerNorm, a GELU (erf form)
//! feed-forward block, residual + LayerNorm. Since each sequence attends only to its own
//! tokens, no attention mask and no padding are needed, and a batch costs the sum of its
//! sequences, not batch × longest.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::config::BertConfig;
use crate::gemm::{Isa, Kernel, NR, Panels, dispatch, matmul, matmul_bias};

/// A linear layer `y = x · Wᵀ + b` with `W` packed for [`matmul`].
struct Linear {
    weight: Panels,
    /// As long as the packed width (zero past the real outputs).
    bias: Vec<f32>,
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one product (output columns q | k | v).
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// The packed encoder.
pub struct Encoder {
    hidden: usize,
    heads: usize,
    eps: f32,
    words: Vec<f32>,
    positions: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    max_positions: usize,
    isa: Isa,
}

/// Reads the named tensors of the checkpoint and checks their shapes.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let tensor = self
            .tensors
            .get(&full)
            .ok_or_else(|| format!("tensor {full} is missing"))?;
        if tensor.dims() != shape {
            return Err(format!(
                "tensor {full}: shape {:?}, expected {shape:?}",
                tensor.dims()
            ));
        }
        tensor
            .to_dtype(candle_core::DType::F32)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| format!("tensor {full}: {e}"))
    }

    fn norm(&self, name: &str, n: usize) -> Result<Norm, String> {
        Ok(Norm {
            gamma: self.get(&format!("{name}.weight"), &[n])?,
            beta: self.get(&format!("{name}.bias"), &[n])?,
        })
    }

    /// The `[out, in]` weights and biases of `names` stacked along the output (one product).
    fn linear(&self, names: &[&str], out: usize, inp: usize) -> Result<Linear, String> {
        let (mut w, mut bias) = (Vec::new(), Vec::new());
        for name in names {
            w.extend(self.get(&format!("{name}.weight"), &[out, inp])?);
            bias.extend(self.get(&format!("{name}.bias"), &[out])?);
        }
        let n = out * names.len();
        let weight = Panels::from_rows_transposed(&w, n, inp);
        bias.resize(weight.width(), 0.0);
        Ok(Linear { weight, bias })
    }
}

impl Encoder {
    /// Width of an attention head the engine supports (one packed panel).
    pub const HEAD_DIM: usize = NR;

    /// Packs the checkpoint's tensors (names as in the published model, with or without a
    /// `bert.` prefix).
    ///
    /// # Errors
    /// A message naming the missing or misshapen tensor, or a config the engine cannot run.
    pub fn load(tensors: &HashMap<String, Tensor>, c: &BertConfig) -> Result<Self, String> {
        let prefix = if tensors.contains_key("bert.embeddings.word_embeddings.weight") {
            "bert."
        } else {
            ""
        };
        let w = Weights { tensors, prefix };
        let h = c.hidden_size;
        if c.num_attention_heads * Self::HEAD_DIM != h {
            return Err(format!(
                "{} heads of width {h}/{} = {}; this encoder needs width {}",
                c.num_attention_heads,
                c.num_attention_heads,
                h / c.num_attention_heads.max(1),
                Self::HEAD_DIM
            ));
        }
        let layers = (0..c.num_hidden_layers)
            .map(|i| {
                let l = format!("encoder.layer.{i}");
                let attn = format!("{l}.attention");
                Ok(Layer {
                    qkv: w.linear(
                        &[
                            &format!("{attn}.self.query"),
                            &format!("{attn}.self.key"),
                            &format!("{attn}.self.value"),
                        ],
                        h,
                        h,
                    )?,
                    attention_out: w.linear(&[&format!("{attn}.output.dense")], h, h)?,
                    attention_norm: w.norm(&format!("{attn}.output.LayerNorm"), h)?,
                    intermediate: w.linear(
                        &[&format!("{l}.intermediate.dense")],
                        c.intermediate_size,
                        h,
                    )?,
                    output: w.linear(&[&format!("{l}.output.dense")], h, c.intermediate_size)?,
                    output_norm: w.norm(&format!("{l}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            hidden: h,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps as f32,
            words: w.get("embeddings.word_embeddings.weight", &[c.vocab_size, h])?,
            positions: w.get(
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?,
            token_type: w.get(
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
            )?,
            embedding_norm: w.norm("embeddings.LayerNorm", h)?,
            layers,
            max_positions: c.max_position_embeddings,
            isa: Isa::detect(),
        })
    }

    /// Hidden states of every token of `rows` (each a sequence of token ids), row after row:
    /// `sum(len) × hidden` values.
    ///
    /// # Errors
    /// A message for a token id outside the vocabulary or a sequence longer than the
    /// position table.
    pub fn forward(&self, rows: &[&[u32]]) -> Result<Vec<f32>, String> {
        // The whole pass is compiled for the CPU's vector set, element-wise loops included.
        dispatch(
            self.isa,
            Forward {
                encoder: self,
                rows,
            },
        )
    }

    #[inline(always)]
    fn forward_inlined(&self, rows: &[&[u32]]) -> Result<Vec<f32>, String> {
        let h = self.hidden;
        let tokens: usize = rows.iter().map(|r| r.len()).sum();
        let mut x = vec![0.0f32; tokens * h];
        let mut at = 0;
        for row in rows {
            if row.len() > self.max_positions {
                return Err(format!(
                    "a sequence of {} tokens exceeds the {} positions",
                    row.len(),
                    self.max_positions
                ));
            }
            for (position, &id) in row.iter().enumerate() {
                let word = self
                    .words
                    .get(id as usize * h..(id as usize + 1) * h)
                    .ok_or_else(|| format!("token id {id} is outside the vocabulary"))?;
                let out = &mut x[at * h..(at + 1) * h];
                let pos = &self.positions[position * h..(position + 1) * h];
                for (((o, &w), &p), &t) in out.iter_mut().zip(word).zip(pos).zip(&self.token_type) {
                    *o = w + p + t;
                }
                at += 1;
            }
        }
        layer_norm_rows(&mut x, h, &self.embedding_norm, self.eps);
        let mut scratch = Scratch::default();
        for layer in &self.layers {
            self.layer(layer, rows, &mut x, &mut scratch);
        }
        Ok(x)
    }

    /// `out = x · Wᵀ + b` for the `m` rows of `x`. The product writes every value of `out`, so
    /// a reused buffer is only resized, never cleared.
    #[inline(always)]
    fn linear(&self, layer: &Linear, x: &[f32], m: usize, out: &mut Vec<f32>) {
        out.resize(m * layer.weight.width(), 0.0);
        matmul_bias(self.isa, x, m, &layer.weight, &layer.bias, out);
    }

    #[inline(always)]
    fn layer(&self, layer: &Layer, rows: &[&[u32]], x: &mut Vec<f32>, s: &mut Scratch) {
        let h = self.hidden;
        let m = x.len() / h;
        self.linear(&layer.qkv, x, m, &mut s.qkv);
        // Every head writes its columns of every row.
        s.context.resize(m * h, 0.0);
        let stride = 3 * h;
        let scale = 1.0 / (Self::HEAD_DIM as f32).sqrt();
        let mut start = 0;
        for row in rows {
            let len = row.len();
            let qkv = &s.qkv[start * stride..(start + len) * stride];
            for head in 0..self.heads {
                let (q, k, v) = (head * NR, h + head * NR, 2 * h + head * NR);
                s.keys.pack_transposed_rows(&qkv[k..], stride, len, NR);
                let width = s.keys.width();
                s.scores.resize(len * width, 0.0);
                matmul(
                    self.isa,
                    &qkv[q..],
                    stride,
                    len,
                    &s.keys,
                    &mut s.scores,
                    width,
                );
                for scores in s.scores.chunks_exact_mut(width) {
                    softmax_scaled(&mut scores[..len], scale);
                }
                s.values.pack_rows(&qkv[v..], stride, len);
                let context = &mut s.context[start * h + head * NR..];
                matmul(self.isa, &s.scores, width, len, &s.values, context, h);
            }
            start += len;
        }
        self.linear(&layer.attention_out, &s.context, m, &mut s.projected);
        add_assign(&mut s.projected, x);
        layer_norm_rows(&mut s.projected, h, &layer.attention_norm, self.eps);
        self.linear(&layer.intermediate, &s.projected, m, &mut s.inner);
        gelu(&mut s.inner);
        self.linear(&layer.output, &s.inner, m, x);
        add_assign(x, &s.projected);
        layer_norm_rows(x, h, &layer.output_norm, self.eps);
    }
}

/// [`Encoder::forward`] as a [`Kernel`], to be compiled per instruction set.
struct Forward<'a> {
    encoder: &'a Encoder,
    rows: &'a [&'a [u32]],
}

impl Kernel for Forward<'_> {
    type Output = Result<Vec<f32>, String>;

    #[inline(always)]
    fn run(self) -> Self::Output {
        self.encoder.forward_inlined(self.rows)
    }
}

/// Buffers reused across layers.
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    inner: Vec<f32>,
    scores: Vec<f32>,
    keys: Panels,
    values: Panels,
}

#[inline(always)]
fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Softmax of `scores × scale`, in place.
#[inline(always)]
fn softmax_scaled(scores: &mut [f32], scale: f32) {
    let max = max(scores);
    for v in scores.iter_mut() {
        *v = exp_nonpositive((*v - max) * scale);
    }
    let inv = 1.0 / sum(scores, |v| v);
    for v in scores.iter_mut() {
        *v *= inv;
    }
}

#[inline(always)]
fn layer_norm_rows(x: &mut [f32], h: usize, norm: &Norm, eps: f32) {
    for row in x.chunks_exact_mut(h) {
        let mean = sum(row, |v| v) / h as f32;
        let var = sum(row, |v| (v - mean) * (v - mean)) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// `Σ f(x[i])` in sixteen interleaved partial sums: a plain left-to-right sum is one chain of
/// dependent additions that no vector unit can help with.
#[inline(always)]
fn sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest of `x` (−∞ for none; the scores are finite), in sixteen lanes like [`sum`]:
/// `f32::max` must handle NaN, so a fold over it stays scalar.
#[inline(always)]
fn max(x: &[f32]) -> f32 {
    const LANES: usize = 16;
    let larger = |a: f32, b: f32| if b > a { b } else { a };
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| larger(m, v));
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = larger(*a, v);
        }
    }
    acc.iter().fold(tail, |m, &v| larger(m, v))
}

/// `eˣ` for `x ≤ 0` (softmax arguments) in single precision, branch-free so the softmax loop
/// vectorises (libm's `expf` is a call per value). Cody–Waite reduction `x = n·ln 2 + r`,
/// then Cephes' degree-6 polynomial for `eʳ`; arguments below −87 give about 1e-38 instead of
/// a subnormal, which no softmax sum can notice. A test bounds the relative error at 3e-7.
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients, as published
fn exp_nonpositive(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_15e-4f32;
    p = p * r + 1.398_199_950_7e-3;
    p = p * r + 8.333_451_907_3e-3;
    p = p * r + 4.166_579_589_4e-2;
    p = p * r + 1.666_666_545_9e-1;
    p = p * r + 5.000_000_120_1e-1;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 0], so 2ⁿ is a normal float built from its exponent bits.
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// GELU, erf form: x·(1 + erf(x/√2))/2.
#[inline(always)]
fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf in single precision by a rational approximation on [-4, 4] (outside it erf is ±1 in
/// f32); branch-free so the GELU loop vectorises. The coefficients are Eigen's / XLA's
/// `erf` for float; a test bounds its error against libm's f64 `erf` at 5e-7 (a few ulp).
#[allow(clippy::excessive_precision)] // the published coefficients, as published
#[inline(always)]
fn erf(x: f32) -> f32 {
    // Plain multiply-adds, not `mul_add`: without FMA enabled at build time `mul_add` is a
    // software call, hundreds of times slower in this loop.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08;
    p = x2 * p - 2.10102402082508e-06;
    p = x2 * p - 5.69250639462346e-05;
    p = x2 * p - 7.34990630326855e-04;
    p = x2 * p - 2.95459980854025e-03;
    p = x2 * p - 1.60960333262415e-02;
    let mut q = x2 * -1.45660718464996e-05 - 2.13374055278905e-04;
    q = x2 * q - 1.68282697438203e-03;
    q = x2 * q - 7.37332916720468e-03;
    q = x2 * q - 1.42647390514189e-02;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm_everywhere_it_matters() {
        let mut worst = 0.0f64;
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            let err = (f64::from(erf(x)) - libm::erf(f64::from(x))).abs();
            worst = worst.max(err);
        }
        assert!(worst < 5e-7, "max |erf error| {worst}");
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }

    #[test]
    fn exp_matches_libm_on_softmax_arguments() {
        let mut worst = 0.0f64;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let want = libm::exp(f64::from(x));
            let err = ((f64::from(exp_nonpositive(x)) - want) / want).abs();
            worst = worst.max(err);
        }
        assert!(worst < 3e-7, "max relative exp error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 2e-38);
        assert!(exp_nonpositive(f32::NEG_INFINITY) < 2e-38);
    }

    #[test]
    fn lane_sums_match_the_plain_sum() {
        let x: Vec<f32> = (0..389).map(|i| (i as f32 * 0.37).sin()).collect();
        let plain: f64 = x.iter().map(|&v| f64::from(v)).sum();
        assert!((f64::from(sum(&x, |v| v)) - plain).abs() < 1e-4);
        let squares: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
        assert!((f64::from(sum(&x, |v| v * v)) - squares).abs() < 1e-4);
        assert_eq!(sum(&[], |v| v), 0.0);
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut s = [1.0f32, 3.0, 2.0, -50.0];
        softmax_scaled(&mut s, 0.5);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(s[1] > s[2] && s[2] > s[0] && s[0] > s[3]);
    }
}

/// The packed engine against the candle graph of `bert.rs` on the real model.
#[cfg(test)]
mod against_candle {
    use candle_core::{DType, Device, Tensor};
    use candle_nn::VarBuilder;

    use super::Encoder;
    use crate::bert::Bert;
    use crate::config::BertConfig;
    use crate::gemm::Isa;
    use crate::model_dir::{CONFIG, WEIGHTS, read_verified, resolve_model_dir};

    #[test]
    fn hidden_states_match_the_candle_graph() {
        let loaded = resolve_model_dir(None).ok().and_then(|dir| {
            let weights = read_verified(&dir, WEIGHTS).ok()?;
            let config = read_verified(&dir, CONFIG).ok()?;
            Some((weights, config))
        });
        let Some((weights, config)) = loaded else {
            // Skips on a developer's machine; fails under CI=true or PILOT_REQUIRE_MINILM=1.
            if let Err(fail) = pilot_data::Input::MiniLm
                .missing("the MiniLM model is not fetched (cargo xtask fetch-model)")
            {
                panic!("{fail}");
            }
            return;
        };
        let config: BertConfig = serde_json::from_slice(&config).unwrap();
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load_buffer(&weights, &device).unwrap();
        let engine = Encoder::load(&tensors, &config).unwrap();
        let vb = VarBuilder::from_slice_safetensors(&weights, DType::F32, &device).unwrap();
        let reference = Bert::load(vb, &config).unwrap();

        // Three sequences of different lengths: candle pads and masks, the engine does not.
        let rows: Vec<Vec<u32>> = vec![
            vec![101, 1996, 4937, 7719, 2648, 102],
            (0..45).map(|i| 101 + (i * 37) % 20000).collect(),
            vec![101, 7592, 102],
        ];
        let longest = rows.iter().map(Vec::len).max().unwrap();
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for row in &rows {
            for t in 0..longest {
                ids.push(row.get(t).copied().unwrap_or(0));
                mask.push(u32::from(t < row.len()));
            }
        }
        let ids = Tensor::from_vec(ids, (rows.len(), longest), &device).unwrap();
        let mask = Tensor::from_vec(mask, (rows.len(), longest), &device).unwrap();
        let expected: Vec<f32> = reference
            .forward(&ids, Some(&mask))
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let slices: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        // Every instruction set this CPU has, each compiled path checked against candle.
        let mut isas = vec![Isa::detect(), Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            isas.push(Isa::Avx2);
        }
        let mut engine = engine;
        for isa in isas {
            engine.isa = isa;
            let ours = engine.forward(&slices).unwrap();
            let h = config.hidden_size;
            let mut at = 0;
            let mut worst = 0.0f32;
            for (b, row) in rows.iter().enumerate() {
                for t in 0..row.len() {
                    let theirs = &expected[(b * longest + t) * h..][..h];
                    for (x, y) in ours[at * h..(at + 1) * h].iter().zip(theirs) {
                        worst = worst.max((x - y).abs());
                    }
                    at += 1;
                }
            }
            assert_eq!(at * h, ours.len());
            assert!(
                worst < 1e-4,
                "{isa:?}: largest hidden-state difference {worst}"
            );
            eprintln!("{isa:?}: largest hidden-state difference to candle: {worst:e}");
        }
    }
}
