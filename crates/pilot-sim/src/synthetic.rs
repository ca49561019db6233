//! The built-in synthetic scenario: a pool priced like the RouterBench LLMs, queries drawn
//! from latent task clusters, turned into text and embedded by any [`Embedder`] (the hashing
//! embedder in `pilot simulate`). Needs no files and is the same on every machine.
//!
//! The world: each LLM has a skill per cluster (its RouterBench mean quality moved up or down
//! per cluster, so no single cheap LLM is best everywhere); each query has a cluster and a
//! difficulty. An answer is correct (quality 1) with probability
//! `σ(logit(skill) − 3·(difficulty − ½))`. The text carries the cluster (topic words) and,
//! noisily, the difficulty (cue words), so a router can learn both from embeddings. A call
//! costs the LLM's RouterBench mean price times the cluster's length factor times ±25 % noise.

use pilot_core::Embedder;
use rand_core::RngCore;

use crate::stream::{rng_for, uniform_index};
use crate::{Problem, Queries, Result, SimError};

/// An LLM of the synthetic pool: its RouterBench name, mean quality and mean cost per query.
pub const POOL: [(&str, f64, f64); 11] = [
    ("gpt-4-1106-preview", 0.880, 5.04e-3),
    ("gpt-3.5-turbo-1106", 0.732, 4.22e-4),
    ("claude-v1", 0.728, 3.60e-3),
    ("claude-v2", 0.551, 3.81e-3),
    ("claude-instant-v1", 0.674, 3.67e-4),
    ("meta/llama-2-70b-chat", 0.619, 3.79e-4),
    ("mistralai/mixtral-8x7b-chat", 0.742, 2.50e-4),
    ("mistralai/mistral-7b-chat", 0.584, 8.19e-5),
    ("zero-one-ai/Yi-34B-Chat", 0.774, 3.32e-4),
    ("WizardLM/WizardLM-13B-V1.2", 0.568, 1.24e-4),
    ("meta/code-llama-instruct-34b-chat", 0.611, 3.13e-4),
];

/// A latent task cluster: its name, topic words and how long (costly) its calls are.
struct Cluster {
    name: &'static str,
    words: &'static [&'static str],
    length: f64,
}

const CLUSTERS: [Cluster; 6] = [
    Cluster {
        name: "arithmetic",
        words: &[
            "sum",
            "multiply",
            "divide",
            "fraction",
            "percent",
            "integer",
            "remainder",
            "equation",
            "solve",
            "total",
            "average",
            "number",
            "digits",
            "product",
        ],
        length: 0.7,
    },
    Cluster {
        name: "code",
        words: &[
            "function",
            "python",
            "return",
            "list",
            "string",
            "loop",
            "array",
            "sort",
            "recursion",
            "parse",
            "write",
            "implement",
            "index",
            "dictionary",
        ],
        length: 1.8,
    },
    Cluster {
        name: "science",
        words: &[
            "energy",
            "cell",
            "molecule",
            "gravity",
            "planet",
            "photosynthesis",
            "atom",
            "experiment",
            "rock",
            "heat",
            "electric",
            "species",
            "climate",
            "force",
        ],
        length: 1.1,
    },
    Cluster {
        name: "commonsense",
        words: &[
            "because", "kitchen", "friend", "door", "window", "morning", "car", "bought", "forgot",
            "umbrella", "dinner", "neighbor", "shoes", "party",
        ],
        length: 0.8,
    },
    Cluster {
        name: "reading",
        words: &[
            "passage",
            "author",
            "paragraph",
            "summary",
            "argument",
            "claim",
            "evidence",
            "tone",
            "narrator",
            "chapter",
            "infer",
            "theme",
            "character",
            "article",
        ],
        length: 1.4,
    },
    Cluster {
        name: "trivia",
        words: &[
            "capital",
            "river",
            "president",
            "war",
            "century",
            "invented",
            "country",
            "painter",
            "mountain",
            "ocean",
            "king",
            "empire",
            "novel",
            "olympics",
        ],
        length: 0.9,
    },
];

const EASY_CUES: [&str; 5] = ["simple", "basic", "easy", "short", "quick"];
const HARD_CUES: [&str; 5] = ["tricky", "advanced", "complex", "subtle", "multistep"];
const FILLER: [&str; 8] = ["the", "what", "which", "is", "of", "a", "please", "answer"];

/// Sizes and seed of the synthetic scenario.
#[derive(Clone, Copy, Debug)]
pub struct SyntheticConfig {
    /// Learning queries (for the prior, the kNN router and cost estimates).
    pub learning: usize,
    /// Deployment queries (the replayed stream).
    pub deployment: usize,
    /// Seed of the world (skills) and of the queries; the stream order has its own seeds.
    pub seed: u64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            learning: 1500,
            deployment: 1500,
            seed: 7,
        }
    }
}

/// The generated scenario: the problem and each query's text (learning first, then
/// deployment), so a prior can be fitted from it like from a real dataset.
#[derive(Clone, Debug)]
pub struct Synthetic {
    /// The routing problem (base embeddings from the embedder).
    pub problem: Problem,
    /// Query texts of the learning split.
    pub learning_text: Vec<String>,
    /// Query texts of the deployment split.
    pub deployment_text: Vec<String>,
}

fn unit(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-LLM, per-cluster skill: the RouterBench mean quality moved by up to ±0.22 per cluster.
/// gpt-4 moves least, so it stays the best single LLM, as on RouterBench; code-llama is good
/// at code.
fn skills(seed: u64) -> Vec<f64> {
    let mut rng = rng_for(seed, 10);
    let mut s = Vec::with_capacity(POOL.len() * CLUSTERS.len());
    for (a, &(name, base, _)) in POOL.iter().enumerate() {
        for cluster in &CLUSTERS {
            let spread = if a == 0 { 0.06 } else { 0.22 };
            let mut v = base + spread * (2.0 * unit(&mut rng) - 1.0);
            if name.contains("code-llama") && cluster.name == "code" {
                v += 0.25;
            }
            if a == 0 {
                v = v.max(base);
            }
            s.push(v.clamp(0.05, 0.97));
        }
    }
    s
}

/// Generates the scenario and embeds every query with `embedder`.
///
/// # Errors
/// [`SimError::Invalid`] for an empty split; [`SimError::Core`] when the embedder fails.
pub fn generate(config: &SyntheticConfig, embedder: &mut dyn Embedder) -> Result<Synthetic> {
    if config.learning == 0 || config.deployment == 0 {
        return Err(SimError::invalid(format!(
            "synthetic scenario needs learning and deployment queries, got {} and {}",
            config.learning, config.deployment
        )));
    }
    let skill = skills(config.seed);
    let dim = embedder.dim();
    let k = POOL.len();
    let mut rng = rng_for(config.seed, 11);
    let mut splits = [Queries::default(), Queries::default()];
    let mut texts = [Vec::new(), Vec::new()];
    let mut base = vec![0.0f32; dim];
    let mut quality = vec![0.0f32; k];
    let mut cost = vec![0.0f64; k];
    for (s, count) in [config.learning, config.deployment].into_iter().enumerate() {
        for i in 0..count {
            let c = uniform_index(&mut rng, CLUSTERS.len());
            let cluster = &CLUSTERS[c];
            let difficulty = unit(&mut rng);
            let text = query_text(cluster, difficulty, &mut rng);
            embedder
                .embed(&text, &mut base)
                .map_err(|e| SimError::core(format!("embedding synthetic query {i}"), e))?;
            let noise = 0.75 + 0.5 * unit(&mut rng);
            for a in 0..k {
                let p = sigmoid(logit(skill[a * CLUSTERS.len() + c]) - 3.0 * (difficulty - 0.5));
                quality[a] = if unit(&mut rng) < p { 1.0 } else { 0.0 };
                cost[a] = POOL[a].2 * cluster.length * noise;
            }
            let id = format!("{}.{}.{i}", ["learn", "deploy"][s], cluster.name);
            splits[s].push(id, c, &base, &quality, &cost);
            texts[s].push(text);
        }
    }
    let [learning, deployment] = splits;
    let [learning_text, deployment_text] = texts;
    let problem = Problem::new(
        POOL.iter().map(|p| p.0.to_owned()).collect(),
        CLUSTERS.iter().map(|c| c.name.to_owned()).collect(),
        dim,
        learning,
        deployment,
        0,
    )?;
    Ok(Synthetic {
        problem,
        learning_text,
        deployment_text,
    })
}

/// Topic words of the cluster, difficulty cues (right with probability ¾) and filler.
fn query_text(cluster: &Cluster, difficulty: f64, rng: &mut dyn RngCore) -> String {
    let mut words: Vec<&str> = Vec::with_capacity(20);
    let topic = 5 + uniform_index(rng, 6);
    for _ in 0..topic {
        words.push(cluster.words[uniform_index(rng, cluster.words.len())]);
    }
    let cues = 1 + uniform_index(rng, 3);
    for _ in 0..cues {
        let hard = (difficulty > 0.5) == (unit(rng) < 0.75);
        let list = if hard { &HARD_CUES } else { &EASY_CUES };
        words.push(list[uniform_index(rng, list.len())]);
    }
    for _ in 0..2 + uniform_index(rng, 3) {
        words.push(FILLER[uniform_index(rng, FILLER.len())]);
    }
    crate::stream::shuffle(&mut words, rng);
    words.join(" ")
}
