//! A `redis-server` of a test's own on a free loopback port in a temporary directory, with its
//! append-only file (`appendfsync always`), killed when dropped: the one harness of the Redis
//! tests (`tests/redis_replicas.rs` and the unit tests of `src/shared.rs`, which include this
//! file by path).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REDIS: &str = "/usr/bin/redis-server";

/// The server; `crash` and `spawn` stop and start it again on the same port and directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// `None` (after saying "skipping") when redis-server is not installed, unless CI=true.
    pub fn start(tag: &str) -> Option<Self> {
        if !Path::new(REDIS).exists() {
            let ci = std::env::var("CI").unwrap_or_default();
            assert!(
                ci != "true" && ci != "1",
                "{REDIS} is missing (CI={ci}: failing rather than skipping)"
            );
            eprintln!("skipping: {REDIS} is not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "pilot-redis-{tag}-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Self {
            port,
            dir,
            child: None,
        };
        s.spawn();
        Some(s)
    }

    /// Starts Redis (again) and waits until it answers PING.
    pub fn spawn(&mut self) {
        let child = Command::new(REDIS)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--protected-mode",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(c) = redis::Client::open(self.url())
                && let Ok(mut conn) = c.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, a crash: with `appendfsync always` every write acknowledged is in the
    /// append-only file (`spawn` starts Redis again on the same port and directory).
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its URL, database 0.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
