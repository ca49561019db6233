//! The proxy is the simulator: the deployment split of routerbench-3k sent through `pilot serve`
//! (the replay upstream, the recorded quality as feedback) gets the quality and spend of the
//! same router driven directly, as pilot-sim's episodes drive it (`pilot_router::Router` with
//! the same prior, policy, budget, quotes and stream, immediate settlement and feedback):
//! exactly when one client sends the stream in order; within the spread of stream orders when
//! many clients send it at once. The budget holds either way. `pilot simulate`'s episode engine
//! itself, given the proxy's policies, contexts, quotes and billed costs, makes every decision
//! the proxy makes. The `pilot` and `pilot-trust` policy kinds run with a prior fitted on the
//! learning split, and a prior of another dimension is refused by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use pilot_data::RoutingDataset;
use pilot_prior::{Expect, FitParams, Prior, sources};
use pilot_router::{Input, Quote, Versions};
use pilot_serve::Config;
use pilot_serve::embed::ServeEmbedder;
use pilot_serve::engine::build_router;
use pilot_serve::http::parse_chat;
use pilot_serve::replay::{Faults, ReplayPrice, ReplayServer, usage_tokens};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg64;
use serde_json::{Value, json};

/// What a pass over a stream got.
#[derive(Debug, Default)]
struct Run {
    /// Sum of the recorded qualities of the answers (refused and unrecorded count 0).
    quality: f64,
    /// Spend, USD.
    spend: f64,
    /// Requests refused with `budget_exhausted`.
    exhausted: usize,
    /// The LLM that answered each request of the stream (`None`: refused).
    choices: Vec<Option<String>>,
}

fn body(query: &str) -> Value {
    json!({"model": "pilot", "messages": [{"role": "user", "content": query}]})
}

/// The stream through the router directly, one request at a time, each settled at what the
/// replay upstream bills and given its recorded quality before the next.
async fn direct(
    cfg: &Config,
    prior: Option<&Prior>,
    ds: &RoutingDataset,
    prices: &[ReplayPrice],
    rows: &[usize],
) -> Run {
    let embedder = ServeEmbedder::open(&cfg.embedder).unwrap();
    let mut router = build_router(cfg, prior, &cfg.upstreams, embedder.dim()).unwrap();
    // The server's first event, and its seed.
    router.set_versions(Versions::default(), 0).unwrap();
    let mut rng = Pcg64::seed_from_u64(cfg.server.seed ^ router.seq());
    // The replay bills a query at the recorded cost of the first row asking it (a few
    // queries appear twice, with different costs).
    let mut first = std::collections::HashMap::new();
    for (i, row) in ds.rows.iter().enumerate() {
        first.entry(row.query.as_str()).or_insert(i);
    }
    let mut run = Run::default();
    for (t, &r) in rows.iter().enumerate() {
        let row = &ds.rows[r];
        let raw = serde_json::to_vec(&body(&row.query)).unwrap();
        let Ok(req) = parse_chat(&raw) else {
            panic!("row {r} does not parse")
        };
        let (base, _) = embedder.embed(&req.text).await.unwrap();
        let input = if prior.is_some() {
            Input::Base(&base)
        } else {
            Input::Context(&base)
        };
        let id = t as u64;
        let d = router
            .route_excluding(
                id,
                input,
                Quote::Tokens {
                    input: req.input_tokens,
                    expected_output: cfg.policy.expected_output_tokens.min(req.max_output),
                    max_output: req.max_output,
                },
                &[],
                id,
                &mut rng,
            )
            .unwrap();
        let Some(arm) = d.arm else {
            run.exhausted += 1;
            run.choices.push(None);
            continue;
        };
        let a = router.arms()[arm.index()].clone();
        let l = ds.llm_index(&a.name).unwrap();
        let max_out = req.max_output.min(a.price.max_output_tokens.max(1));
        let billed = ds.rows[first[row.query.as_str()]].cost[l];
        let (p, c) = usage_tokens(&row.query, billed, &prices[l], max_out);
        router.settle(id, a.price.cost(p, c), id).unwrap();
        if let Some(q) = row.quality[l] {
            router.feedback(id, q as f32, id).unwrap();
            run.quality += q;
        }
        run.choices.push(Some(a.name));
    }
    run.spend = router.guard().to_currency(router.ledger().spent);
    run
}

/// The stream through a running proxy by `clients` concurrent clients (in stream order when
/// there is one), each answer's recorded quality sent as feedback; checks the budget held.
async fn proxied(
    up: &ReplayServer,
    cfg: Config,
    ds: &Arc<RoutingDataset>,
    rows: &[usize],
    clients: usize,
) -> Run {
    let budget = cfg.budget.usd;
    let running = serve(cfg).await;
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rows = Arc::new(rows.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, ds, rows, next) = (
            client.clone(),
            base.clone(),
            ds.clone(),
            rows.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&r) = rows.get(i) else {
                    return got;
                };
                let row = &ds.rows[r];
                let resp = client
                    .post(format!("{base}/v1/chat/completions"))
                    .json(&body(&row.query))
                    .send()
                    .await
                    .unwrap();
                if resp.status() == 402 {
                    got.push((i, None, 0.0));
                    continue;
                }
                assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
                let h = |k: &str| resp.headers()[k].to_str().unwrap().to_string();
                let (id, model) = (h("x-pilot-request-id"), h("x-pilot-model"));
                let _ = resp.bytes().await.unwrap();
                let l = ds.llm_index(&model).unwrap();
                let mut q = 0.0;
                if let Some(quality) = row.quality[l] {
                    let fb = client
                        .post(format!("{base}/v1/feedback"))
                        .json(&json!({"request_id": id, "reward": quality}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(fb.status(), 200);
                    q = quality;
                }
                got.push((i, Some(model), q));
            }
        }));
    }
    let mut run = Run {
        choices: vec![None; rows.len()],
        ..Run::default()
    };
    for t in tasks {
        for (i, model, q) in t.await.unwrap() {
            if model.is_none() {
                run.exhausted += 1;
            }
            run.quality += q;
            run.choices[i] = model;
        }
    }
    let state = get_json(&client, &format!("{base}/v1/router/state")).await;
    let stats = get_json(&client, &format!("http://{}/replay/stats", up.addr)).await;
    let b = &state["budget"];
    run.spend = b["spent_usd"].as_f64().unwrap();
    let billed = stats["billed_usd"].as_f64().unwrap();
    // Every call settled from its usage: nothing left reserved, and the budget held against
    // what the upstream billed.
    assert_eq!(b["reserved_usd"].as_f64().unwrap(), 0.0);
    assert!(
        run.spend <= budget + 1e-9,
        "spent {} of {budget}",
        run.spend
    );
    assert!(billed <= budget + 1e-9, "billed {billed} of {budget}");
    running.task.abort();
    run
}

/// A config for the replay's pool with a budget that binds on the deployment split.
fn cfg_for(up: &ReplayServer, dir: &std::path::Path, budget: f64, n: usize, extra: &str) -> Config {
    let mut c = config(up, budget, &dir.join("state"), extra);
    c.budget.expected_requests = n as u64;
    c
}

fn setup() -> Option<(Arc<RoutingDataset>, Vec<usize>)> {
    if !have_data() {
        return None;
    }
    let ds = Arc::new(RoutingDataset::load(dataset()).unwrap());
    let rows = split(&ds, "test");
    assert_eq!(rows.len(), 953, "the deployment split of routerbench-3k");
    Some((ds, rows))
}

const BUDGET: f64 = 0.15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_in_order_gets_exactly_what_the_router_gets() {
    let Some((ds, rows)) = setup() else { return };
    let up = replay(Faults::default()).await;
    let dir = tempdir("agree-seq");
    let cfg = cfg_for(&up, &dir, BUDGET, rows.len(), "");
    let want = direct(&cfg, None, &ds, &up.prices, &rows).await;
    let got = proxied(&up, cfg, &ds, &rows, 1).await;
    println!(
        "deployment split, 1 client: proxy quality {:.1} spend {:.4} refused {}; router directly {:.1} {:.4} {}",
        got.quality, got.spend, got.exhausted, want.quality, want.spend, want.exhausted
    );
    if let Some(i) = (0..rows.len()).find(|&i| got.choices[i] != want.choices[i]) {
        panic!(
            "request {i}: the proxy chose {:?}, the router {:?}",
            got.choices[i], want.choices[i]
        );
    }
    assert_eq!(got.exhausted, want.exhausted);
    assert!((got.quality - want.quality).abs() < 1e-9);
    // Both round each call up to a nano-dollar.
    assert!((got.spend - want.spend).abs() <= rows.len() as f64 * 1e-9);
    // The budget binds: the stream is not the unconstrained one.
    assert!(
        want.spend > 0.9 * BUDGET || want.exhausted > 0,
        "spent {}",
        want.spend
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_at_once_agree_within_the_spread_of_stream_orders() {
    let Some((ds, rows)) = setup() else { return };
    let up = replay(Faults::default()).await;
    let dir = tempdir("agree-conc");
    let cfg = cfg_for(&up, &dir, BUDGET, rows.len(), "");
    // The noise: the router directly over the stream in its order and in shuffled orders.
    let mut refs = Vec::new();
    for seed in 0..8u64 {
        let mut order = rows.clone();
        if seed > 0 {
            let mut rng = Pcg64::seed_from_u64(seed);
            for i in (1..order.len()).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
        }
        refs.push(direct(&cfg, None, &ds, &up.prices, &order).await);
    }
    let mean = |f: &dyn Fn(&Run) -> f64| refs.iter().map(f).sum::<f64>() / refs.len() as f64;
    let sd = |f: &dyn Fn(&Run) -> f64| {
        let m = mean(f);
        (refs.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>() / (refs.len() - 1) as f64).sqrt()
    };
    let (q_mean, q_sd) = (mean(&|r| r.quality), sd(&|r| r.quality));
    let (s_mean, s_sd) = (mean(&|r| r.spend), sd(&|r| r.spend));
    let got = proxied(&up, cfg, &ds, &rows, 16).await;
    println!(
        "deployment split, 16 clients: proxy quality {:.1} spend {:.4} refused {}; router over 8 stream orders quality {q_mean:.1} ± {q_sd:.1}, spend {s_mean:.4} ± {s_sd:.4}",
        got.quality, got.spend, got.exhausted
    );
    // Quality: within four standard deviations of the orders' spread (and a floor of half a
    // percent of the requests, should the orders happen to agree closely).
    let q_tol = (4.0 * q_sd).max(0.005 * rows.len() as f64);
    assert!(
        (got.quality - q_mean).abs() <= q_tol,
        "quality {} vs {q_mean} ± {q_tol}",
        got.quality
    );
    // Spend: never above the budget (checked in `proxied`), and at most a little below the
    // router's. The one systematic difference: with 16 requests in flight, up to 16 worst-case
    // holds are reserved at once, so near the end of the budget the guard turns expensive LLMs
    // down that the one-at-a-time router still fits; the proxy stops a little short. How short
    // depends on how the requests overlap: 21 runs on 2 cores (4 December 2026) spent
    // 0.130–0.149 against the router's 0.1497, up to 13 % of the budget short, which the
    // 10 % allowed before failed 3 times in 21; 20 % leaves room above that.
    let low = s_mean - 4.0 * s_sd - 0.2 * BUDGET;
    let high = s_mean + 4.0 * s_sd + 0.01 * BUDGET;
    assert!(
        (low..=high).contains(&got.spend),
        "spend {} outside [{low}, {high}]",
        got.spend
    );
}

/// A prior fitted on the learning split, in the hashing embedder's space of `dim`.
fn fit_prior(ds: &RoutingDataset, dim: usize, path: &std::path::Path) -> Prior {
    let cfg = pilot_serve::config::EmbedderConfig {
        dim,
        ..Default::default()
    };
    let embedder = ServeEmbedder::open(&cfg).unwrap();
    let mut data = Vec::with_capacity(ds.rows.len() * dim);
    let mut v = vec![0.0f32; dim];
    for row in &ds.rows {
        // A query without a word embeds as zeros (the fit only reads the learning rows).
        if pilot_embed::hashing::embed_into(&row.query, &mut v).is_err() {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
        data.extend_from_slice(&v);
    }
    let emb = pilot_data::Embeddings::from_vec(data, dim, "routerbench-3k [hash]").unwrap();
    let learning = sources::from_routing(ds, &ds.split_indices("train"), 0.5).unwrap();
    let params = FitParams {
        dim: 8,
        embedder_id: embedder.id().to_string(),
        contrastive_epochs: 2,
        ..FitParams::default()
    };
    let (prior, _) = pilot_prior::fit(&emb, &learning, &params, &mut |_, _, _| {}).unwrap();
    prior.save(path).unwrap();
    Prior::load(path, Expect::default()).unwrap()
}

/// The proxy with policy `kind` on a prior fitted on the learning split chooses exactly what
/// the router does directly, the prior steers from the first request, and its state restarts
/// on the stored events. Returns the config and the replay (for more checks).
async fn a_prior_kind_agrees(kind: &str) -> (Config, ReplayServer, std::path::PathBuf, String) {
    let (ds, rows) = setup().expect("checked by the caller");
    let up = replay(Faults::default()).await;
    let dir = tempdir(&format!("agree-{kind}"));
    let path = dir.join("prior.bin");
    let prior = fit_prior(&ds, 32, &path);
    let extra = format!(
        "[policy]\nkind = {kind:?}\nprior = {:?}\n",
        path.display().to_string()
    );
    let cfg = cfg_for(&up, &dir, BUDGET, rows.len(), &extra);
    let want = direct(&cfg, Some(&prior), &ds, &up.prices, &rows).await;
    let linucb = direct(
        &cfg_for(&up, &dir.join("l"), BUDGET, rows.len(), ""),
        None,
        &ds,
        &up.prices,
        &rows,
    )
    .await;
    let got = proxied(&up, cfg.clone(), &ds, &rows, 1).await;
    println!(
        "deployment split with the {kind} policy and a prior fitted on the learning split: proxy quality {:.1} spend {:.4}; router directly {:.1} {:.4}; linucb without a prior {:.1} {:.4}",
        got.quality, got.spend, want.quality, want.spend, linucb.quality, linucb.spend
    );
    if let Some(i) = (0..rows.len()).find(|&i| got.choices[i] != want.choices[i]) {
        panic!(
            "request {i}: the proxy chose {:?}, the router {:?}",
            got.choices[i], want.choices[i]
        );
    }
    assert!((got.quality - want.quality).abs() < 1e-9);
    // The prior steers from the first request: the first 100 differ from LinUCB's cold start.
    assert_ne!(got.choices[..100], linucb.choices[..100]);
    // The state recorded the prior and restarts on it (snapshot + tail = every event).
    pilot_serve::engine::check_replay(&cfg).unwrap();
    (cfg, up, dir, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pilot_trust_policy_runs_on_a_prior_and_restarts_on_its_events() {
    if setup().is_none() {
        return;
    }
    let (cfg, _up, _dir, _) = a_prior_kind_agrees("pilot-trust").await;
    // Trust does not combine with a discount: refused by name.
    let mut bad = cfg.clone();
    bad.policy.discount = 0.99;
    let msg = format!("{:#}", bad.check().unwrap_err());
    assert!(msg.contains("policy.discount"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pilot_policy_runs_on_a_prior_fitted_on_the_learning_split() {
    let Some((_, rows)) = setup() else { return };
    let (_, up, dir, extra) = a_prior_kind_agrees("pilot").await;

    // A prior of another input dimension is refused at start, naming the key.
    let mut other = cfg_for(&up, &dir.join("other"), BUDGET, rows.len(), &extra);
    other.embedder.dim = 64;
    let Err(e) = pilot_serve::start(other, None).await else {
        panic!("a 32-d prior with a 64-d embedder started")
    };
    let msg = format!("{e:#}");
    assert!(msg.contains("policy.prior") && msg.contains("64"), "{msg}");
}

/// `pilot simulate`'s own episode engine (`pilot_sim::run_episode`, the loop every grid cell,
/// world and tuning run goes through) on the same stream, with the proxy's policies
/// (`build_policies`), its hashing contexts, its token quotes as the cost table and what the
/// replay bills as the real costs, gets the proxy's quality and spend: the simulator evaluates
/// what the proxy deploys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pilot_simulates_episode_engine_gets_what_the_proxy_gets() {
    let Some((ds, all)) = setup() else { return };
    // The simulator gives every answer its recorded quality as feedback; the proxy's client
    // has none to send where a quality is missing: the rows where every LLM has one.
    let rows: Vec<usize> = all
        .into_iter()
        .filter(|&r| ds.rows[r].quality.iter().all(Option::is_some))
        .collect();
    let up = replay(Faults::default()).await;
    let dir = tempdir("agree-sim");
    let cfg = cfg_for(&up, &dir, BUDGET, rows.len(), "");
    let embedder = ServeEmbedder::open(&cfg.embedder).unwrap();
    let dim = embedder.dim();
    let names: Vec<String> = cfg.upstreams.iter().map(|u| u.name.clone()).collect();
    let prices: Vec<pilot_router::Price> = cfg.upstreams.iter().map(|u| u.price()).collect();
    let k = names.len();
    let mut first = std::collections::HashMap::new();
    for (i, row) in ds.rows.iter().enumerate() {
        first.entry(row.query.as_str()).or_insert(i);
    }
    // The deployment split as the simulator sees it: per query its context, every LLM's
    // recorded quality and the cost the proxy would be charged, and the proxy's quotes.
    let mut dep = pilot_sim::Queries::default();
    let (mut contexts, mut estimate, mut worst) = (Vec::new(), Vec::new(), Vec::new());
    for &r in &rows {
        let row = &ds.rows[r];
        let raw = serde_json::to_vec(&body(&row.query)).unwrap();
        let req = parse_chat(&raw).unwrap();
        let (base, _) = embedder.embed(&req.text).await.unwrap();
        dep.ids.push(row.id.clone());
        dep.task.push(0);
        dep.base.extend_from_slice(&base);
        contexts.extend_from_slice(&base);
        for (a, name) in names.iter().enumerate() {
            let l = ds.llm_index(name).unwrap();
            let price = &prices[a];
            let out_max = req.max_output.min(price.max_output_tokens.max(1));
            let billed = ds.rows[first[row.query.as_str()]].cost[l];
            let (p, c) = usage_tokens(&row.query, billed, &up.prices[l], out_max);
            let expected = cfg.policy.expected_output_tokens.min(out_max);
            dep.quality.push(row.quality[l].unwrap_or_default() as f32);
            dep.cost.push(price.cost(p, c));
            estimate.push(price.cost(req.input_tokens, expected));
            worst.push(price.cost(req.input_tokens, out_max));
        }
    }
    let problem = pilot_sim::Problem::new(
        names.clone(),
        vec!["routerbench".into()],
        dim,
        pilot_sim::Queries::default(),
        dep,
        0,
    )
    .unwrap();
    let contexts = pilot_sim::ContextTable::from_rows("hash", dim, contexts).unwrap();
    let costs = pilot_sim::CostModel::from_tables(k, estimate, worst, 0.0).unwrap();
    let order: Vec<usize> = (0..rows.len()).collect();
    let (mut policy, mut cost) =
        pilot_serve::engine::build_policies(&cfg, None, &cfg.upstreams, dim).unwrap();
    let episode = pilot_sim::Episode {
        problem: &problem,
        contexts: &contexts,
        costs: &costs,
        order: &order,
        budget: BUDGET,
        seed: 0,
        log: false,
        exploration: pilot_router::Exploration::Argmax,
    };
    let sim = pilot_sim::run_episode(&episode, &mut policy, &mut cost).unwrap();
    let got = proxied(&up, cfg, &ds, &rows, 1).await;
    let same = (0..rows.len())
        .filter(|&t| sim.choices[t].map(|a| names[a].clone()) == got.choices[t])
        .count();
    println!(
        "deployment split ({} rows with every quality), 1 client: proxy quality {:.1} spend {:.4} refused {}; pilot-sim's episode engine {:.1} {:.4} {}; same decision on {same}",
        rows.len(),
        got.quality,
        got.spend,
        got.exhausted,
        sim.quality,
        sim.cost,
        sim.unserved,
    );
    assert!(sim.budget_held);
    // The same decisions, one by one (the simulator counts money in 10⁻¹² USD against the
    // proxy's 10⁻⁹, so a hold at the very edge of the budget could round the other way; on
    // this stream none does).
    assert_eq!(same, rows.len(), "decisions that differ");
    assert!((sim.quality - got.quality).abs() < 1e-9);
    assert!(
        (sim.cost - got.spend).abs() < 1e-6,
        "{} vs {}",
        sim.cost,
        got.spend
    );
}
