//! A policy plugin that misbehaves on request, for the host's tests: `context[0]` picks the fault.
//!
//! The policy itself is a per-arm running mean with an optimism bonus `1/√(1+n)`, enough to have
//! learned state that a trap must not lose.
//!
//! | `context[0]` | in `select`                          | in `update`                         |
//! |--------------|--------------------------------------|-------------------------------------|
//! | 1001         | panics                               | changes the state, then panics      |
//! | 1002         | spins forever                        | spins forever                       |
//! | 1003         | chooses an arm outside the pool      |                                     |
//! | 1004         | returns a NaN score                  |                                     |
//! | 1005         | returns one score too few            |                                     |
//! | 1006         | allocates until refused              |                                     |
//! | 1007         | chooses an arm that is not the best  |                                     |
//! | 1008         | recurses until the stack is exhausted |                                    |
//!
//! Configuration: `k=<arms> d=<dimension>` (defaults 3 and 2). Rewards must lie in [0, 1].
//! Faults chosen by configuration instead, for every call:
//! - `snapshot=loop|panic|error`: `snapshot` spins forever, panics, or returns an error, from
//!   its `snapshot_from=<n>`-th call on (default 0: always; counted per instance);
//! - `width=negative`: `select` gives the last arm a width of -0.5 (its score stays the best
//!   one's less 1, so only the width is wrong);
//! - `create=evil`: `create` fails with a message holding a newline and ANSI escapes.

use std::cell::Cell;
use std::hint::black_box;

use pilot_plugin_sdk::pilot_core::envelope;
use pilot_plugin_sdk::{
    ArmId, ArmScore, Error, ErrorKind, Policy, PolicyPlugin, Result, Reward, RngCore, Snapshot,
    parse_config, parse_usize,
};

const MAGIC: [u8; 4] = *b"PMIS";
const VERSION: u16 = 1;

/// Running means per arm.
pub struct MeanPolicy {
    dim: usize,
    counts: Vec<u32>,
    sums: Vec<f32>,
    snapshot_fault: Option<SnapshotFault>,
    snapshot_from: u32,
    snapshots: Cell<u32>,
    negative_width: bool,
}

/// How `snapshot` misbehaves when configured to.
#[derive(Clone, Copy)]
enum SnapshotFault {
    Loop,
    Panic,
    Error,
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n; 16]);
    if buf[0] == u64::MAX {
        return 0;
    }
    let deeper = recurse(buf[1].wrapping_add(1));
    deeper ^ black_box(&buf)[3]
}

fn fault(context: &[f32]) -> u32 {
    match context.first() {
        Some(v) if (1000.0..1100.0).contains(v) => *v as u32,
        _ => 0,
    }
}

fn spin() -> ! {
    let mut n = 0u64;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

impl MeanPolicy {
    fn check_context(&self, context: &[f32]) -> Result<()> {
        pilot_plugin_sdk::pilot_core::check_len("MeanPolicy: context", context, self.dim)?;
        pilot_plugin_sdk::pilot_core::check_finite("MeanPolicy: context", context)
    }

    fn scores(&self) -> Vec<ArmScore<f32>> {
        self.counts
            .iter()
            .zip(&self.sums)
            .map(|(&n, &s)| {
                let estimate = if n == 0 { 0.0 } else { s / n as f32 };
                let width = 1.0 / (1.0 + n as f32).sqrt();
                ArmScore {
                    estimate,
                    width,
                    score: estimate + width,
                }
            })
            .collect()
    }
}

impl Policy<f32> for MeanPolicy {
    fn dim(&self) -> usize {
        self.dim
    }

    fn arm_count(&self) -> usize {
        self.counts.len()
    }

    fn select(
        &mut self,
        context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> Result<ArmId> {
        let (arm, computed) = self.select_scored(context, &[], rng)?;
        pilot_plugin_sdk::pilot_core::check_len("MeanPolicy: scores", scores, computed.len())?;
        scores.copy_from_slice(&computed);
        Ok(arm)
    }

    fn update(&mut self, arm: ArmId, context: &[f32], reward: Reward<f32>) -> Result<()> {
        self.check_context(context)?;
        let k = self.counts.len();
        if arm.index() >= k {
            return Err(Error::unknown_arm("MeanPolicy::update", arm.index(), k));
        }
        let r = reward.get();
        if !(0.0..=1.0).contains(&r) {
            return Err(Error::out_of_range(
                "MeanPolicy::update: reward",
                r.into(),
                0.0,
                1.0,
            ));
        }
        match fault(context) {
            1001 => {
                // Half-written state, then a trap: the host must not keep any of it.
                self.counts[arm.index()] += 1000;
                panic!("asked to panic in update");
            }
            1002 => spin(),
            _ => {}
        }
        self.counts[arm.index()] += 1;
        self.sums[arm.index()] += r;
        Ok(())
    }
}

impl Snapshot for MeanPolicy {
    fn snapshot_len(&self) -> usize {
        envelope::HEADER_LEN + 4 + 8 * self.counts.len()
    }

    fn save(&self, out: &mut [u8]) -> Result<usize> {
        let call = self.snapshots.get();
        self.snapshots.set(call.saturating_add(1));
        if call >= self.snapshot_from {
            match self.snapshot_fault {
                Some(SnapshotFault::Loop) => spin(),
                Some(SnapshotFault::Panic) => panic!("asked to panic in snapshot"),
                Some(SnapshotFault::Error) => {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        "misbehaving-policy: asked to fail snapshot",
                    ));
                }
                None => {}
            }
        }
        let mut payload = Vec::with_capacity(self.snapshot_len());
        payload.extend_from_slice(&(self.counts.len() as u32).to_le_bytes());
        for (n, s) in self.counts.iter().zip(&self.sums) {
            payload.extend_from_slice(&n.to_le_bytes());
            payload.extend_from_slice(&s.to_le_bytes());
        }
        let total = envelope::HEADER_LEN + payload.len();
        let Some(dst) = out.get_mut(envelope::HEADER_LEN..total) else {
            return Err(Error::new(ErrorKind::BufferTooSmall, "MeanPolicy::save"));
        };
        dst.copy_from_slice(&payload);
        envelope::seal(out, MAGIC, VERSION, payload.len())
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let payload = envelope::open(bytes, MAGIC, VERSION)?;
        let k = self.counts.len();
        let expected = 4 + 8 * k;
        if payload.len() != expected {
            return Err(Error::dimension(
                "MeanPolicy::restore: payload",
                expected,
                payload.len(),
            ));
        }
        let word = |i: usize| [payload[i], payload[i + 1], payload[i + 2], payload[i + 3]];
        if u32::from_le_bytes(word(0)) as usize != k {
            return Err(Error::dimension(
                "MeanPolicy::restore: arms",
                k,
                u32::from_le_bytes(word(0)) as usize,
            ));
        }
        let mut counts = Vec::with_capacity(k);
        let mut sums = Vec::with_capacity(k);
        for a in 0..k {
            counts.push(u32::from_le_bytes(word(4 + 8 * a)));
            let s = f32::from_le_bytes(word(8 + 8 * a));
            if !s.is_finite() {
                return Err(Error::new(ErrorKind::Corrupt, "MeanPolicy::restore: sum"));
            }
            sums.push(s);
        }
        self.counts = counts;
        self.sums = sums;
        Ok(())
    }
}

impl PolicyPlugin for MeanPolicy {
    fn create(config: &str) -> Result<Self> {
        let (mut k, mut dim) = (3, 2);
        let (mut snapshot_fault, mut snapshot_from, mut negative_width) = (None, 0, false);
        let mut evil = false;
        parse_config(config, |key, value| match (key, value) {
            ("snapshot", "loop") => {
                snapshot_fault = Some(SnapshotFault::Loop);
                Ok(())
            }
            ("snapshot", "panic") => {
                snapshot_fault = Some(SnapshotFault::Panic);
                Ok(())
            }
            ("snapshot", "error") => {
                snapshot_fault = Some(SnapshotFault::Error);
                Ok(())
            }
            ("snapshot_from", _) => {
                snapshot_from = parse_usize("misbehaving-policy config: snapshot_from", value)?
                    .try_into()
                    .unwrap_or(u32::MAX);
                Ok(())
            }
            ("width", "negative") => {
                negative_width = true;
                Ok(())
            }
            ("create", "evil") => {
                evil = true;
                Ok(())
            }
            (key, _) => match key {
                "k" => {
                    k = parse_usize("misbehaving-policy config: k", value)?;
                    Ok(())
                }
                "d" => {
                    dim = parse_usize("misbehaving-policy config: d", value)?;
                    Ok(())
                }
                _ => Err(Error::new(
                    ErrorKind::InvalidParameter,
                    "misbehaving-policy config: unknown key",
                )),
            },
        })?;
        if evil {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "misbehaving-policy\nresult:  every check passed\x1b[8m",
            ));
        }
        if k == 0 || dim == 0 {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "misbehaving-policy config: k and d must be ≥ 1",
            ));
        }
        Ok(Self {
            dim,
            counts: vec![0; k],
            sums: vec![0.0; k],
            snapshot_fault,
            snapshot_from,
            snapshots: Cell::new(0),
            negative_width,
        })
    }

    fn select_scored(
        &mut self,
        context: &[f32],
        _costs: &[f32],
        _rng: &mut dyn RngCore,
    ) -> Result<(ArmId, Vec<ArmScore<f32>>)> {
        self.check_context(context)?;
        let mut scores = self.scores();
        let best = pilot_plugin_sdk::pilot_core::argmax_score(&scores)
            .ok_or(Error::new(ErrorKind::Empty, "MeanPolicy::select"))?;
        let k = scores.len();
        match fault(context) {
            1001 => panic!("asked to panic in select"),
            1002 => spin(),
            1003 => return Ok((ArmId::new(k), scores)),
            1004 => scores[0].score = f32::NAN,
            1005 => {
                scores.pop();
            }
            1006 => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            1007 => return Ok((ArmId::new((best.index() + 1) % k), scores)),
            1008 => scores[0].score = recurse(0) as f32,
            _ => {}
        }
        if self.negative_width && k > 1 {
            let top = scores[best.index()].score;
            let last = k - 1;
            if last != best.index() {
                scores[last].width = -0.5;
                scores[last].score = top - 1.0;
            }
        }
        Ok((best, scores))
    }
}

pilot_plugin_sdk::export_policy!(MeanPolicy);
