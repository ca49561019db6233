//! The Redis state backend: replicas share one budget and one learned state through one Redis
//! database. Every change is an event appended to one Redis Stream by a Lua script that also
//! moves the budget ledger (integer guard units) atomically, so stream order is budget order;
//! every replica folds the whole stream, in order, into its own router (`Router::apply`).
//! Replicas that folded the same prefix hold bit-identical state.
//!
//! Keys (all under the prefix `pilot:`): `meta` (genesis pool, policy fingerprint, first
//! budget), `seq` (events appended), `log` (the stream: fields `s` seq, `at` time, `e` event
//! JSON), `ledger` (budget, spent, reserved), `pool` (1 + seq of the last pool change),
//! `req:ID` (an open decision: hold, settled, rewarded), `deadlines` (sorted set: when open
//! decisions expire, Redis time), `snap` (a router snapshot, the seq and stream id it
//! includes), `period`, `ids` (request id blocks), `upstreams` (operator-added LLMs).

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use pilot_core::{Error, ErrorKind};
use pilot_router::{Decision, EVENT_VERSION, Event, Input, Quote, Record};
use rand_pcg::Pcg64;

use crate::config::UpstreamConfig;
use crate::engine::{OpError, ServeRouter};

/// The key prefix.
pub const PREFIX: &str = "pilot:";

/// Request ids are handed out in blocks of this many per replica start.
pub const ID_BLOCK: u64 = 1 << 32;

/// How many times a decision is re-made on a fresher state before giving up.
const TRIES: usize = 32;

/// Seconds a closed request's key stays (late duplicates still answer 409 / 404 rightly).
const TOMBSTONE_MS: &str = "86400000";

const SCRIPT: &str = r#"
local P = ARGV[1]
local op = ARGV[2]
local id = ARGV[3]
local at = ARGV[4]
local ev = ARGV[5]
local req = P .. 'req:' .. id
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function append(e, t)
  local seq = redis.call('INCR', P .. 'seq') - 1
  local sid = redis.call('XADD', P .. 'log', '*', 's', tostring(seq), 'at', t, 'e', e)
  return sid, seq
end
local function num(k)
  return tonumber(redis.call('HGET', P .. 'ledger', k) or '0')
end
local function unreserve(hold)
  if hold and hold ~= '0' then
    redis.call('HINCRBY', P .. 'ledger', 'reserved', '-' .. hold)
  end
end
if op == 'init' then
  if redis.call('HSETNX', P .. 'meta', 'genesis', ARGV[6]) == 1 then
    redis.call('HSET', P .. 'meta', 'policy', ARGV[7], 'budget', ARGV[8])
    redis.call('HSET', P .. 'ledger', 'budget', ARGV[9], 'spent', '0', 'reserved', '0')
    if ARGV[10] ~= '' then redis.call('SET', P .. 'period', ARGV[10]) end
  end
  return {redis.call('HGET', P .. 'meta', 'genesis'), redis.call('HGET', P .. 'meta', 'policy'),
          redis.call('HGET', P .. 'meta', 'budget')}
elseif op == 'decide' then
  local chosen = ARGV[9] == '1'
  local was = redis.call('HGET', req, 'st')
  if was == 'released' then
    redis.call('DEL', req)
  elseif was then
    return {'dup', redis.call('HGET', req, 'sid') or '', redis.call('HGET', req, 'seq') or ''}
  end
  if (redis.call('GET', P .. 'pool') or '0') ~= ARGV[6] then return {'stale'} end
  if chosen then
    local avail = num('budget') - num('spent') - num('reserved')
    if tonumber(ARGV[7]) > avail then return {'over'} end
    redis.call('HINCRBY', P .. 'ledger', 'reserved', ARGV[7])
  end
  local sid, seq = append(ev, at)
  if chosen then
    redis.call('HSET', req, 'st', 'open', 'hold', ARGV[7], 'settled', '0', 'rewarded', '0',
               'sid', sid, 'seq', tostring(seq))
    redis.call('ZADD', P .. 'deadlines', now_ms() + tonumber(ARGV[8]), id)
  else
    redis.call('HSET', req, 'st', 'none', 'sid', sid, 'seq', tostring(seq))
    redis.call('PEXPIRE', req, ARGV[10])
  end
  return {'ok', sid, tostring(seq)}
elseif op == 'settle' or op == 'release' or op == 'feedback' then
  if redis.call('HGET', req, 'st') ~= 'open' then return {'unknown'} end
  if op == 'feedback' then
    if redis.call('HGET', req, 'rewarded') == '1' then return {'dup'} end
    redis.call('HSET', req, 'rewarded', '1')
  else
    if redis.call('HGET', req, 'settled') == '1' then return {'dup'} end
    unreserve(redis.call('HGET', req, 'hold'))
    if op == 'settle' then
      redis.call('HINCRBY', P .. 'ledger', 'spent', ARGV[6])
      redis.call('HSET', req, 'settled', '1')
    else
      redis.call('HSET', req, 'st', 'released')
      redis.call('PEXPIRE', req, ARGV[10])
      redis.call('ZREM', P .. 'deadlines', id)
    end
  end
  local sid, seq = append(ev, at)
  return {'ok', sid, tostring(seq)}
elseif op == 'expire' then
  local now = now_ms()
  local ids = redis.call('ZRANGEBYSCORE', P .. 'deadlines', '-inf', now, 'LIMIT', 0, 256)
  local n = 0
  for _, rid in ipairs(ids) do
    local r = P .. 'req:' .. rid
    redis.call('ZREM', P .. 'deadlines', rid)
    if redis.call('HGET', r, 'st') == 'open' then
      local charged = redis.call('HGET', r, 'settled') ~= '1'
      if charged then
        local hold = redis.call('HGET', r, 'hold')
        unreserve(hold)
        redis.call('HINCRBY', P .. 'ledger', 'spent', hold)
      end
      redis.call('HSET', r, 'st', 'expired')
      redis.call('PEXPIRE', r, ARGV[10])
      append('{"Expire":{"request":' .. rid .. ',"charged":' .. tostring(charged) .. '}}',
             string.format('%d', now))
      n = n + 1
    end
  end
  return {'ok', tostring(n)}
elseif op == 'admin' then
  local kind = ARGV[6]
  if ARGV[7] ~= '' and (redis.call('GET', P .. 'seq') or '0') ~= ARGV[7] then
    return {'stale'}
  end
  if kind == 'budget' then
    if tonumber(ARGV[8]) < num('spent') + num('reserved') then return {'over'} end
    redis.call('HSET', P .. 'ledger', 'budget', ARGV[8])
  elseif kind == 'period' then
    if ARGV[9] ~= '' and redis.call('GET', P .. 'period') == ARGV[9] then return {'dup'} end
    if tonumber(ARGV[8]) < num('reserved') then return {'over'} end
    if ARGV[9] ~= '' then redis.call('SET', P .. 'period', ARGV[9]) end
    redis.call('HSET', P .. 'ledger', 'budget', ARGV[8], 'spent', '0')
  end
  local sid, seq = append(ev, at)
  if kind == 'pool' then redis.call('SET', P .. 'pool', tostring(seq + 1)) end
  return {'ok', sid, tostring(seq)}
elseif op == 'snap' then
  local cur = tonumber(redis.call('HGET', P .. 'snap', 'seq') or '-1')
  if tonumber(ARGV[6]) > cur then
    redis.call('HSET', P .. 'snap', 'seq', ARGV[6], 'sid', ARGV[7], 'pool', ARGV[8], 'bytes', ARGV[9])
  end
  return {'ok'}
end
return redis.error_reply('pilot: unknown op ' .. op)
"#;

/// What kind of operator event an admin commit carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminKind {
    /// An arm added, enabled/disabled or re-priced: decisions proposed before it are re-made.
    Pool,
    /// A budget change (units): refused below spent + reserved.
    Budget(u64),
    /// A new period (units; the period index, if it is the periodic one).
    Period(u64, Option<u64>),
    /// Anything else (versions).
    Plain,
}

/// A replica's connection to the shared state and its place in the stream.
pub struct Shared {
    client: redis::Client,
    conn: Option<redis::Connection>,
    script: redis::Script,
    /// Stream id of the last folded event (`None`: nothing folded from the stream yet).
    cursor: Option<String>,
    /// 1 + seq of the last pool change folded.
    pool: u64,
    /// Seq of the last snapshot this replica knows of.
    last_snapshot: u64,
    snapshot_every: u64,
    ttl_ms: u64,
    /// Set when Redis holds fewer events than this replica folded: it refuses everything.
    diverged: Option<String>,
}

fn router_err(kind: ErrorKind, what: &'static str) -> OpError {
    OpError::Router(Error::new(kind, what))
}

fn store(e: impl std::fmt::Display) -> OpError {
    OpError::Store(anyhow!("shared state (Redis): {e}"))
}

/// What the genesis `init` returned: pool JSON, policy fingerprint, first budget (USD).
pub struct Genesis {
    /// The pool the state started from.
    pub pool: String,
    /// The policy fingerprint stored.
    pub policy: String,
    /// The first budget (USD) as stored (a `f64` written by Rust).
    pub budget: f64,
}

impl Shared {
    /// Connects to `url` (fails when Redis does not answer).
    ///
    /// # Errors
    /// A bad URL; Redis unreachable.
    pub fn connect(url: &str, snapshot_every: u64, ttl_ms: u64) -> Result<Self> {
        let client = redis::Client::open(url)
            .with_context(|| format!("config key `state.backend`: {url}"))?;
        let mut s = Self {
            client,
            conn: None,
            script: redis::Script::new(SCRIPT),
            cursor: None,
            pool: 0,
            last_snapshot: 0,
            snapshot_every: snapshot_every.max(1),
            ttl_ms,
            diverged: None,
        };
        s.conn().map_err(|e| anyhow!("{e}"))?;
        Ok(s)
    }

    fn conn(&mut self) -> Result<&mut redis::Connection, OpError> {
        if let Some(d) = &self.diverged {
            return Err(OpError::Store(anyhow!("{d}")));
        }
        if self.conn.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))
                .map_err(|e| store(format!("unreachable: {e}")))?;
            c.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(store)?;
            c.set_write_timeout(Some(Duration::from_secs(5)))
                .map_err(store)?;
            self.conn = Some(c);
        }
        self.conn.as_mut().ok_or_else(|| store("no connection"))
    }

    /// Runs a redis command; drops the connection on an I/O error (the next call reconnects).
    /// (These are reads or idempotent writes: one retry on a new connection after a
    /// connection error, e.g. Redis restarted since the last call.)
    fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, OpError> {
        let mut retried = false;
        loop {
            match cmd.query(self.conn()?) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let transient = e.is_io_error() || e.is_connection_dropped() || e.is_timeout();
                    if transient {
                        self.conn = None;
                    }
                    if transient && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(store(e));
                }
            }
        }
    }

    /// Runs the script once; on a connection error retries once on a new connection and says
    /// so (a `dup` answer then means the first try went through).
    fn script(&mut self, op: &str, args: &[&[u8]]) -> Result<(Vec<String>, bool), OpError> {
        let mut retried = false;
        loop {
            self.conn()?;
            let Some(conn) = self.conn.as_mut() else {
                return Err(store("no connection"));
            };
            let mut inv = self.script.prepare_invoke();
            inv.arg(PREFIX).arg(op);
            for a in args {
                inv.arg(*a);
            }
            match inv.invoke::<Vec<String>>(conn) {
                Ok(v) => return Ok((v, retried)),
                Err(e) => {
                    let transient = e.is_io_error() || e.is_connection_dropped() || e.is_timeout();
                    self.conn = None;
                    if transient && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(store(e));
                }
            }
        }
    }

    /// Stores (first replica) or reads the genesis: pool, fingerprint, first budget.
    ///
    /// # Errors
    /// Redis errors.
    pub fn init(
        &mut self,
        pool: &str,
        policy: &str,
        budget_usd: f64,
        budget_units: u64,
        period: Option<u64>,
    ) -> Result<Genesis> {
        let budget = serde_json::to_string(&budget_usd)?;
        let units = budget_units.to_string();
        let period = period.map(|p| p.to_string()).unwrap_or_default();
        let args: [&[u8]; 8] = [
            b"",
            b"0",
            b"",
            pool.as_bytes(),
            policy.as_bytes(),
            budget.as_bytes(),
            units.as_bytes(),
            period.as_bytes(),
        ];
        let (v, _) = self.script("init", &args).map_err(|e| anyhow!("{e}"))?;
        let [pool, policy, budget] = <[String; 3]>::try_from(v)
            .map_err(|_| anyhow!("shared state: a malformed genesis in Redis"))?;
        Ok(Genesis {
            pool,
            policy,
            budget: serde_json::from_str(&budget)
                .context("shared state: the stored first budget does not decode")?,
        })
    }

    /// Restores the newest snapshot in Redis, if any, into `router` (built from the genesis).
    ///
    /// # Errors
    /// Redis errors; a snapshot that does not restore.
    pub fn restore_snapshot(&mut self, router: &mut ServeRouter) -> Result<()> {
        let (seq, sid, pool, bytes): (Option<u64>, Option<String>, Option<u64>, Option<Vec<u8>>) =
            self.query(
                redis::cmd("HMGET")
                    .arg(format!("{PREFIX}snap"))
                    .arg("seq")
                    .arg("sid")
                    .arg("pool")
                    .arg("bytes"),
            )
            .map_err(|e| anyhow!("{e}"))?;
        if let (Some(seq), Some(sid), Some(pool), Some(bytes)) = (seq, sid, pool, bytes) {
            router
                .restore(&bytes)
                .map_err(|e| anyhow!("shared state: snapshot at event {seq}: {e}"))?;
            if router.seq() != seq {
                bail!(
                    "shared state: the snapshot says event {seq}, its router {}",
                    router.seq()
                );
            }
            self.cursor = Some(sid);
            self.pool = pool;
            self.last_snapshot = seq;
        }
        Ok(())
    }

    /// A fresh block of request ids (unique across replicas).
    ///
    /// # Errors
    /// Redis errors.
    pub fn id_block(&mut self) -> Result<u64, OpError> {
        let end: u64 = self.query(
            redis::cmd("INCRBY")
                .arg(format!("{PREFIX}ids"))
                .arg(ID_BLOCK),
        )?;
        Ok(end)
    }

    /// Folds every event appended since the last fold into `router`, in stream order.
    ///
    /// # Errors
    /// Redis errors; an event that does not decode or fold (the state is then refused).
    pub fn catch_up(&mut self, router: &mut ServeRouter) -> Result<(), OpError> {
        loop {
            let start = match &self.cursor {
                Some(c) => format!("({c}"),
                None => "-".into(),
            };
            let entries: Vec<(String, Vec<Vec<u8>>)> = self.query(
                redis::cmd("XRANGE")
                    .arg(format!("{PREFIX}log"))
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(512),
            )?;
            let n = entries.len();
            for (sid, fields) in entries {
                let record = decode(&fields).map_err(|e| {
                    OpError::Store(anyhow!("shared state: stream entry {sid}: {e:#}"))
                })?;
                if record.seq < router.seq() {
                    self.cursor = Some(sid);
                    continue;
                }
                self.fold(router, &record, sid)?;
            }
            if n < 512 {
                break;
            }
        }
        self.maybe_snapshot(router);
        Ok(())
    }

    fn fold(
        &mut self,
        router: &mut ServeRouter,
        record: &Record,
        sid: String,
    ) -> Result<(), OpError> {
        if let Err(e) = router.apply(record) {
            let msg = format!(
                "shared state: event {} does not fold into this replica ({e}); restart it",
                record.seq
            );
            self.diverged = Some(msg.clone());
            return Err(OpError::Store(anyhow!(msg)));
        }
        if matches!(
            record.event,
            Event::ArmAdded { .. } | Event::ArmEnabled { .. } | Event::PriceChanged { .. }
        ) {
            self.pool = record.seq + 1;
        }
        self.cursor = Some(sid);
        Ok(())
    }

    /// After a commit that returned (`sid`, `seq`): folds `own` directly when nothing came
    /// between, else catches up through the stream.
    fn settle_in(
        &mut self,
        router: &mut ServeRouter,
        reply: &[String],
        own: Event,
        at: u64,
    ) -> Result<(), OpError> {
        let (Some(sid), Some(seq)) = (
            reply.get(1),
            reply.get(2).and_then(|s| s.parse::<u64>().ok()),
        ) else {
            return Err(store("a malformed commit reply"));
        };
        if seq == router.seq() {
            let record = Record {
                v: EVENT_VERSION,
                seq,
                at,
                event: own,
            };
            self.fold(router, &record, sid.clone())?;
            self.maybe_snapshot(router);
            Ok(())
        } else if seq > router.seq() {
            self.catch_up(router)
        } else {
            let msg = format!(
                "shared state: Redis appended event {seq} but this replica already folded {}: Redis lost events (restarted without its append-only file?); restart the replicas",
                router.seq()
            );
            self.diverged = Some(msg.clone());
            Err(OpError::Store(anyhow!(msg)))
        }
    }

    fn maybe_snapshot(&mut self, router: &ServeRouter) {
        let seq = router.seq();
        if seq / self.snapshot_every <= self.last_snapshot / self.snapshot_every {
            return;
        }
        let Some(sid) = self.cursor.clone() else {
            return;
        };
        let Ok(bytes) = router.save() else {
            return;
        };
        let (s, p) = (seq.to_string(), self.pool.to_string());
        let args: [&[u8]; 8] = [
            b"",
            b"0",
            b"",
            s.as_bytes(),
            sid.as_bytes(),
            p.as_bytes(),
            &bytes,
            b"",
        ];
        match self.script("snap", &args) {
            Ok(_) => self.last_snapshot = seq,
            Err(e) => eprintln!("pilot serve: snapshot to Redis: {e}"),
        }
    }

    /// Writes a snapshot now (whatever the interval).
    ///
    /// # Errors
    /// Redis or snapshot errors.
    pub fn snapshot_now(&mut self, router: &mut ServeRouter) -> Result<(), OpError> {
        self.catch_up(router)?;
        self.last_snapshot = 0;
        let every = self.snapshot_every;
        self.snapshot_every = 1;
        self.maybe_snapshot(router);
        self.snapshot_every = every;
        Ok(())
    }

    /// Decides for request `id` on the folded state and commits the decision with its hold
    /// (checked against the shared ledger); re-decides on a fresher state when another
    /// replica got there first.
    ///
    /// # Errors
    /// The router's error; Redis unreachable; too much contention.
    #[allow(clippy::too_many_arguments)]
    pub fn route(
        &mut self,
        router: &mut ServeRouter,
        rng: &mut Pcg64,
        id: u64,
        input: Input<'_>,
        quote: Quote<'_>,
        exclude: &[bool],
        now: u64,
    ) -> Result<Decision, OpError> {
        for _ in 0..TRIES {
            self.catch_up(router)?;
            let (decision, event) = router.propose(id, input, quote, exclude, rng)?;
            let (hold, chosen) = match &event {
                Event::Decision(d) => (d.hold, d.chosen.is_some()),
                _ => (0, false),
            };
            let json = serde_json::to_string(&event).map_err(store)?;
            let (ids, at, pool, hold_s, ttl) = (
                id.to_string(),
                now.to_string(),
                self.pool.to_string(),
                hold.to_string(),
                self.ttl_ms.to_string(),
            );
            let args: [&[u8]; 8] = [
                ids.as_bytes(),
                at.as_bytes(),
                json.as_bytes(),
                pool.as_bytes(),
                hold_s.as_bytes(),
                ttl.as_bytes(),
                if chosen { b"1" } else { b"0" },
                TOMBSTONE_MS.as_bytes(),
            ];
            let (reply, retried) = self.script("decide", &args)?;
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    self.settle_in(router, &reply, event, now)?;
                    return Ok(decision);
                }
                Some("dup") if retried => {
                    self.catch_up(router)?;
                    return Ok(decision);
                }
                Some("dup") => {
                    return Err(router_err(
                        ErrorKind::Duplicate,
                        "shared state: request id already used",
                    ));
                }
                Some("over" | "stale") => continue,
                _ => return Err(store(format!("unexpected reply {reply:?}"))),
            }
        }
        Err(store(format!(
            "no decision could be committed in {TRIES} tries (other replicas kept changing the state first)"
        )))
    }

    /// Commits a settle, release or feedback event for request `id` and folds it.
    ///
    /// # Errors
    /// Unknown request (404), duplicate (409), Redis unreachable.
    pub fn close(
        &mut self,
        router: &mut ServeRouter,
        op: &str,
        id: u64,
        event: Event,
        charged: u64,
        now: u64,
    ) -> Result<(), OpError> {
        let json = serde_json::to_string(&event).map_err(store)?;
        let (ids, at, ch) = (id.to_string(), now.to_string(), charged.to_string());
        let args: [&[u8]; 8] = [
            ids.as_bytes(),
            at.as_bytes(),
            json.as_bytes(),
            ch.as_bytes(),
            b"",
            b"",
            b"",
            TOMBSTONE_MS.as_bytes(),
        ];
        let (reply, retried) = self.script(op, &args)?;
        match reply.first().map(String::as_str) {
            Some("ok") => self.settle_in(router, &reply, event, now),
            Some("dup") if retried => self.catch_up(router),
            Some("dup") => Err(router_err(
                ErrorKind::Duplicate,
                "shared state: this request was already settled or rewarded (by some replica)",
            )),
            Some("unknown") => Err(router_err(
                ErrorKind::UnknownRequest,
                "shared state: no open decision with this request id (never routed, expired or released)",
            )),
            _ => Err(store(format!("unexpected reply {reply:?}"))),
        }
    }

    /// Commits an operator event made by `make` from the folded state (`None`: nothing to
    /// do), re-made when the stream moved on first.
    ///
    /// # Errors
    /// `make`'s error; the shared ledger refusing a budget (409); Redis unreachable.
    pub fn admin(
        &mut self,
        router: &mut ServeRouter,
        now: u64,
        mut make: impl FnMut(&ServeRouter) -> Result<Option<(Event, AdminKind)>, OpError>,
    ) -> Result<bool, OpError> {
        for _ in 0..TRIES * 4 {
            self.catch_up(router)?;
            let Some((event, kind)) = make(router)? else {
                return Ok(false);
            };
            let json = serde_json::to_string(&event).map_err(store)?;
            let expect = router.seq().to_string();
            let (k, units, period) = match kind {
                AdminKind::Pool => ("pool", String::new(), String::new()),
                AdminKind::Budget(u) => ("budget", u.to_string(), String::new()),
                AdminKind::Period(u, p) => (
                    "period",
                    u.to_string(),
                    p.map(|p| p.to_string()).unwrap_or_default(),
                ),
                AdminKind::Plain => ("plain", String::new(), String::new()),
            };
            let strict = matches!(kind, AdminKind::Pool | AdminKind::Plain);
            let at = now.to_string();
            let args: [&[u8]; 8] = [
                b"",
                at.as_bytes(),
                json.as_bytes(),
                k.as_bytes(),
                if strict { expect.as_bytes() } else { b"" },
                units.as_bytes(),
                period.as_bytes(),
                b"",
            ];
            let (reply, _) = self.script("admin", &args)?;
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    self.settle_in(router, &reply, event, now)?;
                    return Ok(true);
                }
                Some("dup") => return Ok(false),
                Some("stale") => continue,
                Some("over") => {
                    return Err(router_err(
                        ErrorKind::OverBudget,
                        "shared state: the budget would fall below what is spent and reserved",
                    ));
                }
                _ => return Err(store(format!("unexpected reply {reply:?}"))),
            }
        }
        Err(store(
            "an operator change could not be committed (the stream kept moving)",
        ))
    }

    /// Expires the decisions whose deadline passed (any replica may; each once), checks that
    /// Redis did not lose events this replica folded, and folds what is new.
    ///
    /// # Errors
    /// Redis errors; a lost tail.
    pub fn tick(&mut self, router: &mut ServeRouter) -> Result<(), OpError> {
        let args: [&[u8]; 8] = [b"", b"0", b"", b"", b"", b"", b"", TOMBSTONE_MS.as_bytes()];
        self.script("expire", &args)?;
        let len: Option<u64> = self.query(redis::cmd("GET").arg(format!("{PREFIX}seq")))?;
        let len = len.unwrap_or(0);
        if len < router.seq() {
            let msg = format!(
                "shared state: Redis holds {len} events, this replica folded {}: Redis lost events (restarted without its append-only file?); restart the replicas",
                router.seq()
            );
            self.diverged = Some(msg.clone());
            return Err(OpError::Store(anyhow!(msg)));
        }
        self.catch_up(router)
    }

    /// The current period index stored (`None`: none).
    ///
    /// # Errors
    /// Redis errors.
    pub fn period(&mut self) -> Result<Option<u64>, OpError> {
        self.query(redis::cmd("GET").arg(format!("{PREFIX}period")))
    }

    /// Operator-added upstreams.
    ///
    /// # Errors
    /// Redis or decoding errors.
    pub fn upstreams(&mut self) -> Result<Vec<UpstreamConfig>, OpError> {
        let specs: Vec<String> =
            self.query(redis::cmd("HVALS").arg(format!("{PREFIX}upstreams")))?;
        let mut out = Vec::new();
        for s in specs {
            out.push(serde_json::from_str(&s).map_err(store)?);
        }
        out.sort_by(|a: &UpstreamConfig, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Remembers an operator-added upstream.
    ///
    /// # Errors
    /// Redis errors.
    pub fn put_upstream(&mut self, spec: &UpstreamConfig) -> Result<(), OpError> {
        let json = serde_json::to_string(spec).map_err(store)?;
        self.query::<()>(
            redis::cmd("HSET")
                .arg(format!("{PREFIX}upstreams"))
                .arg(&spec.name)
                .arg(json),
        )
    }

    /// The shared ledger as Redis holds it: (budget, spent, reserved) units.
    ///
    /// # Errors
    /// Redis errors.
    pub fn ledger(&mut self) -> Result<(u64, u64, u64), OpError> {
        let (b, s, r): (Option<u64>, Option<u64>, Option<u64>) = self.query(
            redis::cmd("HMGET")
                .arg(format!("{PREFIX}ledger"))
                .arg("budget")
                .arg("spent")
                .arg("reserved"),
        )?;
        Ok((b.unwrap_or(0), s.unwrap_or(0), r.unwrap_or(0)))
    }
}

/// A stream entry's fields (`s`, `at`, `e`) as a record.
fn decode(fields: &[Vec<u8>]) -> Result<Record> {
    let mut seq = None;
    let mut at = None;
    let mut event = None;
    for kv in fields.chunks(2) {
        let [k, v] = kv else {
            bail!("an odd field list");
        };
        let v = std::str::from_utf8(v).context("a field that is not UTF-8")?;
        match k.as_slice() {
            b"s" => seq = Some(v.parse::<u64>().context("field s")?),
            b"at" => at = Some(v.parse::<u64>().context("field at")?),
            b"e" => event = Some(serde_json::from_str::<Event>(v).context("field e")?),
            _ => {}
        }
    }
    match (seq, at, event) {
        (Some(seq), Some(at), Some(event)) => Ok(Record {
            v: EVENT_VERSION,
            seq,
            at,
            event,
        }),
        _ => bail!("fields s, at and e are needed"),
    }
}

// The Redis tests' one harness, shared with `tests/redis_replicas.rs`.
#[cfg(test)]
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::redis_server::RedisServer;
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const EV: &[u8] = br#"{"Release":{"request":0}}"#;

    fn decide(s: &mut Shared, id: u64, hold: u64) -> String {
        let (id, hold) = (id.to_string(), hold.to_string());
        let args: [&[u8]; 8] = [
            id.as_bytes(),
            b"0",
            EV,
            b"0",
            hold.as_bytes(),
            b"60000",
            b"1",
            TOMBSTONE_MS.as_bytes(),
        ];
        s.script("decide", &args).unwrap().0[0].clone()
    }

    fn close(s: &mut Shared, op: &str, id: u64, charged: u64) -> String {
        let (id, charged) = (id.to_string(), charged.to_string());
        let args: [&[u8]; 8] = [
            id.as_bytes(),
            b"0",
            EV,
            charged.as_bytes(),
            b"",
            b"",
            b"",
            TOMBSTONE_MS.as_bytes(),
        ];
        s.script(op, &args).unwrap().0[0].clone()
    }

    #[test]
    fn reserve_and_settle_count_once_and_concurrent_replicas_never_exceed_the_budget() {
        let Some(srv) = RedisServer::start("shared-unit") else {
            return;
        };
        let budget = 100_000u64;
        let mut s = Shared::connect(&srv.url(), 1000, 60_000).unwrap();
        s.init("[]", "test", 1e-4, budget, None).unwrap();
        // A retried reserve and a retried settle count once.
        assert_eq!(decide(&mut s, 1, 300), "ok");
        assert_eq!(decide(&mut s, 1, 300), "dup");
        assert_eq!(s.ledger().unwrap(), (budget, 0, 300));
        assert_eq!(close(&mut s, "settle", 1, 200), "ok");
        assert_eq!(close(&mut s, "settle", 1, 200), "dup");
        assert_eq!(close(&mut s, "release", 1, 0), "dup");
        assert_eq!(s.ledger().unwrap(), (budget, 200, 0));
        assert_eq!(close(&mut s, "feedback", 1, 0), "ok");
        assert_eq!(close(&mut s, "feedback", 1, 0), "dup");
        assert_eq!(close(&mut s, "settle", 99, 1), "unknown");
        // A released hold comes back; the same id may be routed again (a retry).
        assert_eq!(decide(&mut s, 2, 500), "ok");
        assert_eq!(close(&mut s, "release", 2, 0), "ok");
        assert_eq!(s.ledger().unwrap(), (budget, 200, 0));
        assert_eq!(decide(&mut s, 2, 500), "ok");
        assert_eq!(close(&mut s, "settle", 2, 100), "ok");
        // Six replicas reserving, settling and releasing at once while a seventh connection
        // watches the ledger: spent + reserved never exceeds the budget.
        let stop = Arc::new(AtomicBool::new(false));
        let url = srv.url();
        let watcher = {
            let (stop, url) = (stop.clone(), url.clone());
            std::thread::spawn(move || {
                let mut w = Shared::connect(&url, 1000, 60_000).unwrap();
                let mut samples = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (b, sp, r) = w.ledger().unwrap();
                    assert!(sp + r <= b, "spent {sp} + reserved {r} > budget {b}");
                    samples += 1;
                }
                samples
            })
        };
        let workers: Vec<_> = (0..6u64)
            .map(|t| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut s = Shared::connect(&url, 1000, 60_000).unwrap();
                    let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let mut refused = 0u32;
                    for i in 0..300u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let id = 1000 + t * 10_000 + i;
                        let hold = 100 + x % 2000;
                        match decide(&mut s, id, hold).as_str() {
                            "ok" if x % 5 == 0 => assert_eq!(close(&mut s, "release", id, 0), "ok"),
                            "ok" => {
                                assert_eq!(
                                    close(&mut s, "settle", id, (x >> 8) % (hold + 1)),
                                    "ok"
                                );
                            }
                            "over" => refused += 1,
                            other => panic!("{other}"),
                        }
                    }
                    refused
                })
            })
            .collect();
        let refused: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        let samples = watcher.join().unwrap();
        let (b, sp, r) = s.ledger().unwrap();
        assert_eq!(r, 0);
        assert!(sp <= b);
        assert!(refused > 0, "the budget never bound");
        assert!(samples > 10);
    }
}
