//! Group commit of the router's events, out of the router's lock. Under the lock an operation
//! only queues its events (and now and then a snapshot), in sequence order. After the lock is
//! released, a caller that must answer "stored" commits: the first to take the writer's
//! connection stores everything queued so far in one transaction (its own events and those of
//! every request that queued meanwhile); the others find their events already stored and return.
//! No thread hand-off on the way (on a loaded machine a wake-up of another thread costs
//! milliseconds), no disk I/O under the router's lock, and one commit serves many requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Result, anyhow};
use pilot_router::Record;

use crate::store::Store;

/// What is queued for the writer, in the order it was queued.
pub enum Item {
    /// Events, by increasing sequence number.
    Records(Vec<Record>),
    /// A snapshot that includes every event before `seq`.
    Snapshot(u64, Vec<u8>),
}

#[derive(Default)]
struct Queue {
    records: Vec<Record>,
    snapshots: Vec<(u64, Vec<u8>)>,
}

/// The queue, the writer's connection and how far the log is stored.
pub struct Committer {
    queue: Mutex<Queue>,
    /// A plain mutex: the commit it guards takes tens of microseconds, and handing an async
    /// mutex from waiter to waiter through the runtime's scheduler costs far more on a loaded
    /// machine (measured: p99 of the wait 20 ms against 1 ms).
    store: Mutex<Store>,
    /// Every event before this sequence number is stored.
    durable: AtomicU64,
}

impl Committer {
    /// A committer on `store` (its own connection), whose log is stored up to `durable`
    /// (every event before it).
    ///
    /// # Errors
    /// None today; kept for writers that need to start something.
    pub fn start(store: Store, durable: u64) -> Result<Self> {
        Ok(Self {
            queue: Mutex::new(Queue::default()),
            store: Mutex::new(store),
            durable: AtomicU64::new(durable),
        })
    }

    /// Queues an item (call it under the router's lock so items keep their order).
    ///
    /// # Errors
    /// A poisoned queue.
    pub fn queue(&self, item: Item) -> Result<()> {
        let mut q = self
            .queue
            .lock()
            .map_err(|_| anyhow!("the event queue is poisoned"))?;
        match item {
            Item::Records(mut r) => q.records.append(&mut r),
            Item::Snapshot(seq, bytes) => q.snapshots.push((seq, bytes)),
        }
        Ok(())
    }

    /// Returns once every event before `ticket` is stored, committing what is queued if no one
    /// else has.
    ///
    /// # Errors
    /// The write failed (the events stay queued, first in line for the next commit; the
    /// caller must not answer as if they were stored).
    pub fn commit(&self, ticket: u64) -> Result<()> {
        if self.durable.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let mut store = self
            .store
            .lock()
            .map_err(|_| anyhow!("the state writer is poisoned"))?;
        // Another caller may have stored these while this one waited for the connection.
        if self.durable.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        // A snapshot that fails does not fail the events (it was reported).
        self.write(&mut store).map(|_| ())
    }

    /// Stores everything queued now (snapshots included), whoever's it is.
    ///
    /// # Errors
    /// As [`commit`](Self::commit), or a snapshot that could not be stored.
    pub fn flush(&self) -> Result<()> {
        let mut store = self
            .store
            .lock()
            .map_err(|_| anyhow!("the state writer is poisoned"))?;
        match self.write(&mut store)? {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Stores what is queued; `Ok(Some(e))`: the events are stored, a snapshot is not.
    fn write(&self, store: &mut Store) -> Result<Option<anyhow::Error>> {
        let Queue { records, snapshots } = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| anyhow!("the event queue is poisoned"))?;
            std::mem::take(&mut *q)
        };
        if let Err(e) = store.append(&records) {
            // Back to the front of the queue: they come before anything queued since.
            if let Ok(mut q) = self.queue.lock() {
                let mut later = std::mem::take(&mut q.records);
                q.records = records;
                q.records.append(&mut later);
                let mut later = std::mem::take(&mut q.snapshots);
                q.snapshots = snapshots;
                q.snapshots.append(&mut later);
            }
            return Err(e);
        }
        if let Some(last) = records.last() {
            self.durable.fetch_max(last.seq + 1, Ordering::AcqRel);
        }
        // Every event a snapshot includes was queued before it: stored now. A snapshot that
        // fails is reported and dropped (the next one will do; recovery replays the events).
        let mut failed = None;
        for (seq, bytes) in snapshots {
            if let Err(e) = store.snapshot(seq, &bytes) {
                eprintln!("pilot serve: snapshot at event {seq} not stored: {e:#}");
                failed = Some(e);
            }
        }
        Ok(failed)
    }

    /// Every event before this sequence number is stored.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}
