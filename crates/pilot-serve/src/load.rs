//! Load and fault figures: a replay upstream in-process, `pilot serve` as a child process, and
//! many concurrent clients replaying a split of a routing dataset with the recorded quality as
//! feedback; optionally injected upstream errors and a `kill -9` + restart in the middle.
//! Bounded loops on loopback only; prints the figures and returns them.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use pilot_data::RoutingDataset;
use serde_json::{Value, json};

use crate::replay::{self, Faults};

/// Arguments of the load run.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// The routing dataset.
    #[arg(long, default_value = "../shared/data/routerbench-3k.jsonl")]
    pub dataset: PathBuf,
    /// The split replayed (cycled when shorter than the request count).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Budget (USD).
    #[arg(long, default_value_t = 1000.0)]
    pub budget: f64,
    /// Injected upstream error rate.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Injected missing-usage rate.
    #[arg(long, default_value_t = 0.0)]
    pub missing_usage_rate: f64,
    /// Kill -9 the server after this fraction of the requests and restart it (0: never).
    #[arg(long, default_value_t = 0.0)]
    pub kill_at: f64,
    /// Every n-th request streams (0: none).
    #[arg(long, default_value_t = 10)]
    pub stream_every: usize,
    /// The `pilot-serve` binary (default: this executable).
    #[arg(long)]
    pub serve_bin: Option<PathBuf>,
    /// State directory (default: a fresh one under the system temp dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Exploration (`argmax`, `epsilon`, `softmax`).
    #[arg(long, default_value = "argmax")]
    pub exploration: String,
    /// Share the state through this Redis database (`redis://HOST:PORT/DB`, an empty one)
    /// instead of SQLite.
    #[arg(long)]
    pub redis: Option<String>,
    /// Replicas of `pilot serve` (more than one needs `--redis`); request i goes to replica
    /// i mod n and its feedback to the next one.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// The server's embedder (`hash`, or `minilm` with a server built with `--features
    /// minilm`).
    #[arg(long, default_value = "hash")]
    pub embedder: String,
    /// Most texts embedded in one call (`minilm`).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Run the server(s) on these CPUs only (`taskset -c` list, e.g. `0`), and the clients and
    /// the replay upstream on the others: on a small machine this keeps the load generator's
    /// work out of the proxy's figures, as when clients and LLMs are other hosts (Linux, needs
    /// `taskset`).
    #[arg(long)]
    pub server_cpus: Option<String>,
}

impl LoadArgs {
    /// The command line's defaults (`pilot-serve load` with no flags), to change a few of.
    ///
    /// # Errors
    /// None in practice (the defaults parse); clap's error otherwise.
    pub fn defaults() -> Result<Self> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: LoadArgs,
        }
        Ok(<Cli as clap::Parser>::try_parse_from(["load"])?.args)
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests refused with `budget_exhausted`.
    pub budget_exhausted: u64,
    /// Other failures seen by clients (after their retries).
    pub failed: u64,
    /// Wall time, seconds.
    pub secs: f64,
    /// Client latency percentiles (ms).
    pub latency_ms: (f64, f64),
    /// Server routing overhead p50 / p99 (µs).
    pub route_us: (f64, f64),
    /// Server proxy overhead (outside the upstream call) p50 / p99 (µs).
    pub proxy_us: (f64, f64),
    /// Server embedding time p50 / p99 (µs).
    pub embed_us: (f64, f64),
    /// Server wait for events to be stored, per operation, p50 / p99 (µs).
    pub commit_us: (f64, f64),
    /// Feedbacks answered 200.
    pub feedback_acked: u64,
    /// Feedbacks the server's state holds at the end.
    pub feedback_in_state: u64,
    /// Feedbacks sent (answered or not).
    pub feedback_sent: u64,
    /// Budget, spent and reserved at the end (USD).
    pub ledger: (f64, f64, f64),
    /// What the upstream billed (USD).
    pub billed: f64,
    /// Mean recorded quality of the answers.
    pub mean_quality: f64,
    /// Answers per LLM.
    pub per_llm: HashMap<String, u64>,
    /// Kills performed.
    pub kills: u32,
}

fn free_port() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

fn spawn_serve(bin: &Path, config: &Path, log: &Path, cpus: Option<&str>) -> Result<Child> {
    let out = std::fs::File::create(log)?;
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(list).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

/// The CPUs of this machine other than those of `list` (a `taskset -c` list of numbers and
/// ranges), as a list.
fn other_cpus(list: &str) -> Result<String> {
    let all = std::thread::available_parallelism()?.get();
    let mut taken = vec![false; all];
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().context("--server-cpus")?,
            b.trim().parse().context("--server-cpus")?,
        );
        for slot in taken.iter_mut().take(b.saturating_add(1)).skip(a) {
            *slot = true;
        }
    }
    let rest: Vec<String> = (0..all)
        .filter(|&c| !taken[c])
        .map(|c| c.to_string())
        .collect();
    if rest.is_empty() {
        bail!("--server-cpus {list} leaves no CPU for the clients (this machine has {all})");
    }
    Ok(rest.join(","))
}

async fn wait_healthy(
    client: &reqwest::Client,
    base: &str,
    child: &mut Child,
    log: &Path,
) -> Result<()> {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("pilot serve exited ({status}): {text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("pilot serve did not become healthy in 30 s")
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

/// Runs the load and prints the figures.
///
/// # Errors
/// Setup failures (dataset, ports, the server not starting).
pub fn run(args: &LoadArgs) -> Result<()> {
    let report = run_report(args)?;
    print_report(args, &report);
    Ok(())
}

/// Prints a report.
pub fn print_report(args: &LoadArgs, r: &LoadReport) {
    println!(
        "load: {} clients, {} requests, error rate {}, kill at {} ({} kills), stream every {}; {} replica(s), state {}",
        args.clients,
        args.requests,
        args.error_rate,
        args.kill_at,
        r.kills,
        args.stream_every,
        args.replicas.max(1),
        args.redis.as_deref().unwrap_or("SQLite")
    );
    println!(
        "  answered {} ok, {} budget_exhausted, {} failed in {:.2} s: {:.0} requests/s",
        r.ok,
        r.budget_exhausted,
        r.failed,
        r.secs,
        (r.ok + r.budget_exhausted) as f64 / r.secs.max(1e-9)
    );
    println!(
        "  client latency p50 {:.2} ms p99 {:.2} ms (loopback upstream included)",
        r.latency_ms.0, r.latency_ms.1
    );
    println!(
        "  routing overhead (Router::route) p50 {:.1} µs p99 {:.1} µs; proxy overhead outside the upstream call p50 {:.1} µs p99 {:.1} µs (server samples since its last start)",
        r.route_us.0, r.route_us.1, r.proxy_us.0, r.proxy_us.1
    );
    println!(
        "  embedding p50 {:.1} µs p99 {:.1} µs; wait for the events to be stored (group commit, per operation) p50 {:.1} µs p99 {:.1} µs",
        r.embed_us.0, r.embed_us.1, r.commit_us.0, r.commit_us.1
    );
    println!(
        "  budget {:.4} USD, spent {:.4}, reserved {:.4}; upstream billed {:.4}: overspend {}",
        r.ledger.0,
        r.ledger.1,
        r.ledger.2,
        r.billed,
        if r.billed <= r.ledger.0 + 1e-9 && r.ledger.1 + r.ledger.2 <= r.ledger.0 + 1e-9 {
            "none"
        } else {
            "YES"
        }
    );
    println!(
        "  feedback sent {}, answered 200 {}, in the state {}: lost {}",
        r.feedback_sent,
        r.feedback_acked,
        r.feedback_in_state,
        r.feedback_acked.saturating_sub(r.feedback_in_state)
    );
    let mut per: Vec<_> = r.per_llm.iter().collect();
    per.sort_by(|a, b| b.1.cmp(a.1));
    println!(
        "  mean recorded quality {:.4}; answers per LLM: {per:?}",
        r.mean_quality
    );
}

struct Shared {
    next: AtomicUsize,
    ok: AtomicU64,
    exhausted: AtomicU64,
    failed: AtomicU64,
    fb_sent: AtomicU64,
    fb_acked: AtomicU64,
    quality_milli: AtomicU64,
    latencies: Mutex<Vec<f64>>,
    per_llm: Mutex<HashMap<String, u64>>,
    done: AtomicUsize,
    down: AtomicBool,
}

/// Runs the load and returns the figures.
///
/// # Errors
/// Setup failures.
pub fn run_report(args: &LoadArgs) -> Result<LoadReport> {
    if let Some(list) = &args.server_cpus {
        // This process (clients and replay upstream, every thread) on the other CPUs.
        let rest = other_cpus(list)?;
        let ok = Command::new("taskset")
            .args(["-a", "-p", "-c", &rest, &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .context("running taskset (util-linux) for --server-cpus")?;
        if !ok.success() {
            bail!("taskset could not move the clients to CPUs {rest}");
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: &LoadArgs) -> Result<LoadReport> {
    let ds = Arc::new(RoutingDataset::load(&args.dataset).map_err(|e| anyhow!("{e}"))?);
    let rows = ds.split_indices(&args.split);
    if rows.is_empty() {
        bail!("the dataset has no rows in split {:?}", args.split);
    }
    let rows = Arc::new(rows);
    let up = replay::start(
        &args.dataset,
        "127.0.0.1:0".parse()?,
        Faults {
            error_rate: args.error_rate,
            missing_usage_rate: args.missing_usage_rate,
            ..Faults::default()
        },
        7,
    )
    .await?;
    let state_dir = match &args.state_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "pilot-load-{}-{}",
            std::process::id(),
            crate::engine::now_ms()
        )),
    };
    std::fs::create_dir_all(&state_dir)?;
    let n = args.replicas.max(1);
    if n > 1 && args.redis.is_none() {
        bail!("--replicas {n} needs --redis (SQLite replicas would each have their own budget)");
    }
    let addrs: Vec<SocketAddr> = (0..n).map(|_| free_port()).collect::<Result<_>>()?;
    let addr = addrs[0];
    let mut config = replay::config_for(
        up.addr,
        &up.llms,
        &up.prices,
        args.budget,
        &state_dir.join("state"),
        &addr.to_string(),
    );
    config.push_str(&format!(
        "[exploration]\nkind = {:?}\n\n[policy]\nkind = \"linucb\"\n",
        args.exploration
    ));
    if args.embedder != "hash" {
        config.push_str(&format!(
            "\n[embedder]\nkind = {:?}\nmax_batch = {}\n",
            args.embedder, args.max_batch
        ));
    }
    config = config.replace(
        "expected_requests = 1000",
        &format!("expected_requests = {}", args.requests.max(1)),
    );
    if let Some(url) = &args.redis {
        let dir_line = format!("dir = {:?}", state_dir.join("state").display().to_string());
        config = config.replace(&dir_line, &format!("backend = {url:?}"));
    }
    let mut config_paths = Vec::new();
    for (k, a) in addrs.iter().enumerate() {
        let path = match k {
            0 => state_dir.join("pilot.toml"),
            _ => state_dir.join(format!("pilot-{k}.toml")),
        };
        let text = config.replace(
            &format!("listen = \"{addr}\""),
            &format!("listen = \"{a}\""),
        );
        std::fs::write(&path, text)?;
        config_paths.push(path);
    }
    let config_path = config_paths[0].clone();
    let bin = match &args.serve_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?,
    };
    let log = state_dir.join("serve.log");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = format!("http://{addr}");
    let bases: Arc<Vec<String>> = Arc::new(addrs.iter().map(|a| format!("http://{a}")).collect());
    let mut child = spawn_serve(&bin, &config_path, &log, args.server_cpus.as_deref())?;
    wait_healthy(&client, &base, &mut child, &log).await?;
    let mut others = Vec::new();
    for k in 1..n {
        let log_k = state_dir.join(format!("serve-{k}.log"));
        let mut c = spawn_serve(&bin, &config_paths[k], &log_k, args.server_cpus.as_deref())?;
        wait_healthy(&client, &bases[k], &mut c, &log_k).await?;
        others.push(c);
    }
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        ok: AtomicU64::new(0),
        exhausted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        fb_sent: AtomicU64::new(0),
        fb_acked: AtomicU64::new(0),
        quality_milli: AtomicU64::new(0),
        latencies: Mutex::new(Vec::with_capacity(args.requests)),
        per_llm: Mutex::new(HashMap::new()),
        done: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (client, bases, shared, ds, rows) = (
            client.clone(),
            bases.clone(),
            shared.clone(),
            ds.clone(),
            rows.clone(),
        );
        let (total, stream_every) = (args.requests, args.stream_every);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let row = &ds.rows[rows[i % rows.len()]];
                let stream = stream_every > 0 && i % stream_every == 0;
                let (to, fb) = (&bases[i % bases.len()], &bases[(i + 1) % bases.len()]);
                one_request(&client, to, fb, &shared, &ds, row, stream).await;
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut kills = 0;
    if args.kill_at > 0.0 {
        let at = (args.requests as f64 * args.kill_at) as usize;
        while shared.done.load(Ordering::Relaxed) < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shared.down.store(true, Ordering::Relaxed);
        child.kill()?; // SIGKILL
        child.wait()?;
        kills += 1;
        child = spawn_serve(
            &bin,
            &config_path,
            &log.with_extension("log.2"),
            args.server_cpus.as_deref(),
        )?;
        wait_healthy(&client, &base, &mut child, &log.with_extension("log.2")).await?;
        shared.down.store(false, Ordering::Relaxed);
    }
    for t in tasks {
        t.await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    let state: Value = client
        .get(format!("{base}/v1/router/state"))
        .send()
        .await?
        .json()
        .await?;
    let stats: Value = client
        .get(format!("http://{}/replay/stats", up.addr))
        .send()
        .await?
        .json()
        .await?;
    let _ = child.kill();
    let _ = child.wait();
    for mut c in others {
        let _ = c.kill();
        let _ = c.wait();
    }
    let f = |v: &Value, p: &[&str]| {
        let mut x = v;
        for k in p {
            x = &x[*k];
        }
        x.as_f64().unwrap_or(f64::NAN)
    };
    let in_state: u64 = state["llms"]
        .as_array()
        .map(|a| a.iter().map(|l| l["feedbacks"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    let ok = shared.ok.load(Ordering::Relaxed);
    let mut lat = shared
        .latencies
        .lock()
        .map(|g| g.clone())
        .unwrap_or_default();
    let report = LoadReport {
        ok,
        budget_exhausted: shared.exhausted.load(Ordering::Relaxed),
        failed: shared.failed.load(Ordering::Relaxed),
        secs,
        latency_ms: (pct(&mut lat, 0.5), pct(&mut lat, 0.99)),
        route_us: (
            f(&state, &["overhead_us", "route", "p50"]),
            f(&state, &["overhead_us", "route", "p99"]),
        ),
        proxy_us: (
            f(&state, &["overhead_us", "proxy", "p50"]),
            f(&state, &["overhead_us", "proxy", "p99"]),
        ),
        embed_us: (
            f(&state, &["overhead_us", "embed", "p50"]),
            f(&state, &["overhead_us", "embed", "p99"]),
        ),
        commit_us: (
            f(&state, &["overhead_us", "commit_wait", "p50"]),
            f(&state, &["overhead_us", "commit_wait", "p99"]),
        ),
        feedback_acked: shared.fb_acked.load(Ordering::Relaxed),
        feedback_in_state: in_state,
        feedback_sent: shared.fb_sent.load(Ordering::Relaxed),
        ledger: (
            f(&state, &["budget", "budget_usd"]),
            f(&state, &["budget", "spent_usd"]),
            f(&state, &["budget", "reserved_usd"]),
        ),
        billed: f(&stats, &["billed_usd"]),
        mean_quality: shared.quality_milli.load(Ordering::Relaxed) as f64 / 1e6 / ok.max(1) as f64,
        per_llm: shared.per_llm.lock().map(|g| g.clone()).unwrap_or_default(),
        kills,
    };
    up.task.abort();
    if args.state_dir.is_none() {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    Ok(report)
}

async fn one_request(
    client: &reqwest::Client,
    base: &str,
    feedback_base: &str,
    shared: &Shared,
    ds: &RoutingDataset,
    row: &pilot_data::RoutingRow,
    stream: bool,
) {
    let body = json!({
        "model": "pilot",
        "messages": [{"role": "user", "content": row.query}],
        "stream": stream,
    });
    let t = Instant::now();
    // Retries only while the server is down (a kill in the middle), bounded.
    let mut resp = None;
    for _ in 0..400 {
        match client
            .post(format!("{base}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => {
                resp = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let Some(resp) = resp else {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let status = resp.status();
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (id, model) = (header("x-pilot-request-id"), header("x-pilot-model"));
    if status.as_u16() == 402 {
        shared.exhausted.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if !status.is_success() {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    // Read the whole answer (a stream to its end).
    let mut body_ok = true;
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        if chunk.is_err() {
            body_ok = false;
            break;
        }
    }
    if !body_ok {
        shared.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Ok(mut l) = shared.latencies.lock() {
        l.push(t.elapsed().as_secs_f64() * 1e3);
    }
    shared.ok.fetch_add(1, Ordering::Relaxed);
    let (Some(id), Some(model)) = (id, model) else {
        return;
    };
    if let Ok(mut m) = shared.per_llm.lock() {
        *m.entry(model.clone()).or_insert(0) += 1;
    }
    let Some(q) = ds.llm_index(&model).and_then(|l| row.quality[l]) else {
        return;
    };
    shared
        .quality_milli
        .fetch_add((q * 1e6).round() as u64, Ordering::Relaxed);
    let fb = json!({"request_id": id, "reward": q});
    shared.fb_sent.fetch_add(1, Ordering::Relaxed);
    for _ in 0..400 {
        match client
            .post(format!("{feedback_base}/v1/feedback"))
            .json(&fb)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                shared.fb_acked.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Learned before a crash but the answer was lost: it is in the state.
            Ok(r) if r.status().as_u16() == 409 => return,
            Ok(_) => return,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::other_cpus;

    #[test]
    fn the_clients_get_the_cpus_the_server_does_not() {
        let all = std::thread::available_parallelism().unwrap().get();
        if all < 2 {
            return;
        }
        let rest = other_cpus("0").unwrap();
        let want: Vec<String> = (1..all).map(|c| c.to_string()).collect();
        assert_eq!(rest, want.join(","));
        let every = format!("0-{}", all - 1);
        let msg = other_cpus(&every).unwrap_err().to_string();
        assert!(msg.contains("no CPU for the clients"), "{msg}");
        assert!(other_cpus("zero").is_err());
    }
}
