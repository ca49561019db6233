//! `pilot serve`: an OpenAI-compatible routing proxy on the PILOT router, with feedback, a
//! hard budget and durable state; and `upstream-replay`, a replay upstream for tests.
//!
//! See `docs/serve.md` for the quick start, the configuration and the endpoints.

pub mod cli;
pub mod commit;
pub mod config;
pub mod embed;
pub mod engine;
pub mod export;
pub mod http;
pub mod load;
pub mod metrics;
pub mod replay;
pub mod shared;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

pub use config::{Config, ConfigError};
pub use engine::Engine;

/// A running server: its address and the engine.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its engine (state, metrics).
    pub engine: Arc<Engine>,
    /// The server task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Opens the state, binds `listen` (or the config's address) and serves in the background on
/// the current tokio runtime.
///
/// # Errors
/// Config, state, prior or bind errors.
pub async fn start(config: Config, listen: Option<SocketAddr>) -> Result<Running> {
    let addr: SocketAddr = match listen {
        Some(a) => a,
        None => config
            .server
            .listen
            .parse()
            .context("config key `server.listen`")?,
    };
    let engine = Engine::open(config)?;
    let app = http::app(engine.clone())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    if engine.config.state.backend() == config::StateBackend::Sqlite {
        let weak = Arc::downgrade(&engine);
        store::Store::checkpointer(
            &engine.config.state.dir,
            Duration::from_millis(500),
            move || weak.strong_count() > 0,
        )?;
    }
    // The ticker holds the engine weakly: it stops with the server.
    let ticker = Arc::downgrade(&engine);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            let Some(ticker) = ticker.upgrade() else {
                break;
            };
            if let Err(e) = ticker.tick().await {
                eprintln!("pilot serve: periodic tick: {e}");
            }
        }
    });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("pilot serve: {e}");
        }
    });
    Ok(Running { addr, engine, task })
}

/// `pilot serve --config FILE`: serves until interrupted.
///
/// # Errors
/// Config, state, prior or bind errors.
pub fn run_serve(config_path: &std::path::Path) -> Result<()> {
    let config = Config::load(config_path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let running = start(config, None).await?;
        eprintln!(
            "pilot serve: listening on http://{} (OpenAI base URL http://{}/v1)",
            running.addr, running.addr
        );
        tokio::select! {
            _ = terminate() => {
                running.engine.snapshot_now().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!("pilot serve: stopped by SIGTERM (state saved)");
            }
            _ = tokio::signal::ctrl_c() => {
                running.engine.snapshot_now().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!("pilot serve: stopped (state saved)");
            }
            _ = running.task => {}
        }
        Ok(())
    })
}

/// Resolves on SIGTERM (never elsewhere than on Unix).
async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}
