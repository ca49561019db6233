//! The `Router`: the one object real traffic, the simulator and replicas go through.
//!
//! `route` embeds (optionally), projects, scores, filters by budget, draws and holds;
//! `settle` turns the hold into the real cost; `feedback` teaches the policy; operators add,
//! disable and re-price LLMs and change the budget live. Every state change is an [`Event`]
//! folded by one function, so a snapshot plus the events after it rebuild the same bits.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use pilot_budget::{BudgetLedger, Guard};
use pilot_core::{
    ArmId, ArmScore, CostPolicy, Decision as Proposal, Detail, Embedder, Error, ErrorKind,
    GrowPool, Policy, Result, Reward, RngCore, Snapshot,
};
use pilot_embed::Projection;
use serde::{Deserialize, Serialize};

use crate::event::{
    ArmStart, Candidate, DecisionEvent, EVENT_VERSION, Event, Price, Record, Versions,
};
use crate::step::{Exploration, Status, StepInput, StepScratch, decide};

/// A policy the router can route with: it scores, learns and grows its pool.
pub trait RoutingPolicy: Policy<f32> + GrowPool<f32> {}
impl<T: Policy<f32> + GrowPool<f32> + ?Sized> RoutingPolicy for T {}

/// A routing policy that also saves and restores its state (for router snapshots).
pub trait LivePolicy: RoutingPolicy + Snapshot {}
impl<T: Policy<f32> + GrowPool<f32> + Snapshot + ?Sized> LivePolicy for T {}

/// A cost policy the router can run: it chooses, is charged and saves its state.
pub trait LiveCost: CostPolicy<f64> + Snapshot {}
impl<T: CostPolicy<f64> + Snapshot + ?Sized> LiveCost for T {}

/// The embedder of a router that is always given vectors.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEmbedder;

impl Embedder for NoEmbedder {
    fn id(&self) -> &str {
        ""
    }
    fn dim(&self) -> usize {
        0
    }
    fn embed(&mut self, _text: &str, _out: &mut [f32]) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "Router::route: text input needs an embedder (this router takes vectors)",
        ))
    }
}

/// Settings of a router.
#[derive(Clone, Debug, PartialEq)]
pub struct RouterConfig {
    /// The budget (currency).
    pub budget: f64,
    /// Guard units per currency unit (1e9: nano-dollars).
    pub units_per_currency: f64,
    /// How long a decision waits for its settlement and feedback (in the caller's time units).
    pub ttl: u64,
    /// How the arm is drawn from the candidates.
    pub exploration: Exploration,
    /// Whether events are kept for the caller to drain (recovery, evaluation, replicas).
    pub record: bool,
}

impl RouterConfig {
    /// A router with `budget`, nano-unit accounting, decisions that never expire, the argmax
    /// and events recorded.
    pub fn new(budget: f64) -> Self {
        Self {
            budget,
            units_per_currency: 1e9,
            ttl: u64::MAX,
            exploration: Exploration::Argmax,
            record: true,
        }
    }
}

/// One LLM of the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arm {
    /// Its name (the upstream model name).
    pub name: String,
    /// Whether it may be called.
    pub enabled: bool,
    /// Its price.
    pub price: Price,
    /// The vector it started from (`None`: neutral), for "mean of the others".
    pub start: Option<Vec<f32>>,
    /// Decisions that called it.
    pub decisions: u64,
    /// Feedbacks learned from.
    pub feedbacks: u64,
    /// Sum of those rewards.
    pub reward_sum: f64,
    /// Units charged for its calls (settled and expired).
    pub spent: u64,
}

impl Arm {
    /// An enabled arm with no history.
    pub fn new(name: impl Into<String>, price: Price) -> Self {
        Self {
            name: name.into(),
            enabled: true,
            price,
            start: None,
            decisions: 0,
            feedbacks: 0,
            reward_sum: 0.0,
            spent: 0,
        }
    }
}

/// What the router is given to route.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// The policy context itself (already projected).
    Context(&'a [f32]),
    /// A base embedding, mapped through the router's projection.
    Base(&'a [f32]),
    /// Text, embedded by the router's embedder, then projected.
    Text(&'a str),
}

/// How the cost of a call is estimated before it is made.
#[derive(Clone, Copy, Debug)]
pub enum Quote<'a> {
    /// The caller's per-arm estimate and worst case (currency), e.g. from similar past queries.
    PerArm {
        /// Expected cost per arm.
        estimate: &'a [f64],
        /// Cost bound per arm (the hold).
        worst: &'a [f64],
    },
    /// From each arm's price: `input` tokens (a bound), `expected_output` tokens for the
    /// estimate and `max_output` (clamped to the arm's limit) for the worst case.
    Tokens {
        /// Input tokens (an upper bound, e.g. the UTF-8 byte count).
        input: u64,
        /// Output tokens expected.
        expected_output: u64,
        /// Output tokens requested at most.
        max_output: u64,
    },
}

/// The router's answer to `route`.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The request id.
    pub request: u64,
    /// The arm to call (`None`: nothing fits the budget).
    pub arm: Option<ArmId>,
    /// π(arm | context, candidates).
    pub propensity: f64,
    /// How the arm was drawn.
    pub draw: Exploration,
    /// What is held for the call (currency).
    pub hold: f64,
    /// Whether the budget guard replaced the cost policy's proposal.
    pub overridden: bool,
    /// One entry per arm: estimate, width, score, costs, probability and status.
    pub arms: Vec<Candidate>,
}

/// A decision waiting for its settlement and feedback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Pending {
    arm: u32,
    /// Dropped once the feedback is learned.
    context: Option<Vec<f32>>,
    hold: u64,
    at: u64,
    deadline: u64,
    settled: bool,
    rewarded: bool,
}

/// What `settle`, `release` and `feedback` check before they commit.
#[derive(Clone, Copy)]
struct PendingFacts {
    hold: u64,
    at: u64,
    settled: bool,
    rewarded: bool,
}

/// The state a snapshot saves (besides the policy's and cost policy's own bytes).
#[derive(Serialize, Deserialize)]
struct Saved {
    version: u16,
    seq: u64,
    policy: Vec<u8>,
    cost: Vec<u8>,
    guard: [u64; 6],
    arms: Vec<Arm>,
    pending: Vec<(u64, Pending)>,
    versions: Versions,
}

const SNAPSHOT_MAGIC: [u8; 4] = *b"PRTR";

/// Per-step buffers, kept to avoid allocating in `route`.
#[derive(Clone, Debug, Default)]
struct Buffers {
    scores: Vec<ArmScore<f32>>,
    wide: Vec<ArmScore<f64>>,
    shown: Vec<f64>,
    probability: Vec<f64>,
    status: Vec<Status>,
    estimate: Vec<f64>,
    worst: Vec<u64>,
    excluded: Vec<bool>,
    base: Vec<f32>,
    context: Vec<f32>,
}

impl Buffers {
    fn resize(&mut self, k: usize) {
        self.scores.resize(k, ArmScore::default());
        self.wide.resize(k, ArmScore::default());
        self.shown.resize(k, 0.0);
        self.probability.resize(k, 0.0);
        self.status.resize(k, Status::Candidate);
        self.estimate.resize(k, 0.0);
        self.worst.resize(k, 0);
        self.excluded.resize(k, false);
    }
}

/// The router: policy + guarded cost policy + optional embedder and projection + arms +
/// pending decisions + event log.
pub struct Router<P, C, E = NoEmbedder> {
    policy: P,
    guard: Guard<C, f64>,
    embedder: Option<E>,
    projection: Option<Projection<Vec<f32>>>,
    arms: Vec<Arm>,
    pending: BTreeMap<u64, Pending>,
    /// `(deadline, request)` of every pending decision: the next to expire first.
    expiry: BTreeSet<(u64, u64)>,
    config: RouterConfig,
    versions: Versions,
    log: Vec<Record>,
    seq: u64,
    buf: Buffers,
}

fn arm_index(a: usize) -> u32 {
    u32::try_from(a).unwrap_or(u32::MAX)
}

impl<P: RoutingPolicy, C: CostPolicy<f64>> Router<P, C, NoEmbedder> {
    /// A router over `arms` (one per policy arm, in order) that is given vectors.
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) when `arms` and the policy's pool
    /// differ in size; [`InvalidParameter`](ErrorKind::InvalidParameter) for a bad setting or
    /// price; as [`Guard::new`].
    pub fn new(policy: P, cost: C, arms: Vec<Arm>, config: RouterConfig) -> Result<Self> {
        Self::with_embedder(policy, cost, None, arms, config)
    }
}

impl<P: RoutingPolicy, C: CostPolicy<f64>, E: Embedder> Router<P, C, E> {
    /// A router with an optional embedder for text input.
    ///
    /// # Errors
    /// As [`Router::new`].
    pub fn with_embedder(
        policy: P,
        cost: C,
        embedder: Option<E>,
        arms: Vec<Arm>,
        config: RouterConfig,
    ) -> Result<Self> {
        if arms.len() != policy.arm_count() {
            return Err(Error::dimension(
                "Router::new: arms (one per policy arm)",
                policy.arm_count(),
                arms.len(),
            ));
        }
        if arms.is_empty() {
            return Err(Error::new(ErrorKind::Empty, "Router::new: arms"));
        }
        if let Some(bad) = arms.iter().position(|a| !a.price.is_valid()) {
            return Err(Error::invalid_parameter(
                "Router::new: arm price (finite, >= 0)",
                bad as f64,
            ));
        }
        config.exploration.check()?;
        let guard = Guard::new(cost, config.budget, config.units_per_currency)?;
        let mut buf = Buffers::default();
        buf.resize(arms.len());
        buf.context.resize(policy.dim(), 0.0);
        Ok(Self {
            policy,
            guard,
            embedder,
            projection: None,
            arms,
            pending: BTreeMap::new(),
            expiry: BTreeSet::new(),
            config,
            versions: Versions::default(),
            log: Vec::new(),
            seq: 0,
            buf,
        })
    }

    /// Maps base vectors through `projection` (its context dimension must be the policy's).
    ///
    /// # Errors
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch).
    pub fn with_projection(mut self, projection: Projection<Vec<f32>>) -> Result<Self> {
        if projection.context_dim() != self.policy.dim() {
            return Err(Error::dimension(
                "Router::with_projection: context dimension (the policy's)",
                self.policy.dim(),
                projection.context_dim(),
            ));
        }
        self.projection = Some(projection);
        Ok(self)
    }

    /// The policy.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// The budget guard (its ledger and the wrapped cost policy).
    pub fn guard(&self) -> &Guard<C, f64> {
        &self.guard
    }

    /// The budget ledger: budget, spent, reserved (units).
    pub fn ledger(&self) -> BudgetLedger {
        self.guard.ledger()
    }

    /// The pool.
    pub fn arms(&self) -> &[Arm] {
        &self.arms
    }

    /// The index of the arm named `name`.
    pub fn arm_named(&self, name: &str) -> Option<ArmId> {
        self.arms
            .iter()
            .position(|a| a.name == name)
            .map(ArmId::new)
    }

    /// Decisions still waiting for settlement, feedback or expiry.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The settings.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Position of the next event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Keeps `amount` (currency) aside for calls still to come (the simulator keeps a reserve
    /// per remaining query; a server with no horizon keeps none).
    ///
    /// # Errors
    /// As [`pilot_budget::to_units`].
    pub fn set_keep_aside(&mut self, amount: f64) -> Result<()> {
        let units = self.guard.units(amount, "Router::set_keep_aside")?;
        self.guard.set_keep_aside(units);
        Ok(())
    }

    /// Takes the events recorded since the last call, oldest first.
    pub fn drain_events(&mut self) -> Vec<Record> {
        core::mem::take(&mut self.log)
    }

    /// Records the versions of what makes the decisions from now on.
    ///
    /// # Errors
    /// None in practice (the event only replaces the versions).
    pub fn set_versions(&mut self, versions: Versions, now: u64) -> Result<()> {
        self.commit(now, Event::Versions(versions))
    }

    /// The versions in force.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Routes request `request` at time `now`.
    ///
    /// # Errors
    /// [`Duplicate`](ErrorKind::Duplicate) for a request id still pending,
    /// [`DimensionMismatch`](ErrorKind::DimensionMismatch) /
    /// [`NonFinite`](ErrorKind::NonFinite) / [`NegativeCost`](ErrorKind::NegativeCost) for bad
    /// input or quotes, [`Unsupported`](ErrorKind::Unsupported) for text without an embedder or
    /// a base vector without a projection; the policy's or cost policy's error. Nothing changes
    /// on error, except decisions that expired by `now`.
    pub fn route(
        &mut self,
        request: u64,
        input: Input<'_>,
        quote: Quote<'_>,
        now: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Decision> {
        self.route_excluding(request, input, quote, &[], now, rng)
    }

    /// As [`route`](Self::route), with the arms where `exclude` is `true` left out of this
    /// decision as if disabled (a server's retry after an upstream failure, or a request
    /// pinned to one LLM); `exclude` may be shorter than the pool (missing entries: `false`).
    ///
    /// # Errors
    /// As [`route`](Self::route).
    pub fn route_excluding(
        &mut self,
        request: u64,
        input: Input<'_>,
        quote: Quote<'_>,
        exclude: &[bool],
        now: u64,
        rng: &mut dyn RngCore,
    ) -> Result<Decision> {
        self.expire_due(now)?;
        if self.pending.contains_key(&request) {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::route: request id already pending",
            ));
        }
        let (decision, step) = self.step(request, input, quote, exclude, rng)?;
        if let Some(a) = step.arm {
            let context = self.buf.context.clone();
            self.open(request, a.index(), context, step.hold, now);
        }
        if self.config.record {
            let event = Event::Decision(self.decision_event(request, &decision, &step));
            self.push(now, event);
        } else {
            self.seq += 1;
        }
        Ok(decision)
    }

    /// One decision step on the current state: context, quote, score, guard, draw and hold
    /// (the hold is taken in the guard); no pending entry and no event.
    fn step(
        &mut self,
        request: u64,
        input: Input<'_>,
        quote: Quote<'_>,
        exclude: &[bool],
        rng: &mut dyn RngCore,
    ) -> Result<(Decision, crate::step::Step)> {
        self.write_context(input)?;
        self.write_quote(quote)?;
        for (x, &e) in self.buf.excluded.iter_mut().zip(exclude) {
            *x |= e;
        }
        let k = self.arms.len();
        let b = &mut self.buf;
        let step = decide(
            &mut self.policy,
            &mut self.guard,
            StepInput {
                context: &b.context,
                estimate: &b.estimate,
                worst: &b.worst,
                excluded: &b.excluded,
            },
            self.config.exploration,
            rng,
            StepScratch {
                scores: &mut b.scores,
                wide: &mut b.wide,
                shown: &mut b.shown,
                probability: &mut b.probability,
                status: &mut b.status,
            },
        )?;
        let arms: Vec<Candidate> = (0..k)
            .map(|a| Candidate {
                estimate: b.scores[a].estimate,
                width: b.scores[a].width,
                score: b.scores[a].score,
                cost: b.estimate[a],
                worst: b.worst[a],
                probability: b.probability[a],
                status: b.status[a],
            })
            .collect();
        let decision = Decision {
            request,
            arm: step.arm,
            propensity: step.propensity,
            draw: self.config.exploration,
            hold: self.guard.to_currency(step.hold),
            overridden: step.overridden,
            arms,
        };
        Ok((decision, step))
    }

    /// The event of a decision just stepped (its context is in the buffers).
    fn decision_event(
        &self,
        request: u64,
        decision: &Decision,
        step: &crate::step::Step,
    ) -> DecisionEvent {
        DecisionEvent {
            request,
            context: self.buf.context.clone(),
            arms: decision.arms.clone(),
            chosen: step.arm.map(|a| arm_index(a.index())),
            proposed: match step.proposed {
                Proposal::Route(a) => Some(arm_index(a.index())),
                Proposal::BudgetExhausted => None,
            },
            overridden: step.overridden,
            propensity: step.propensity,
            draw: self.config.exploration,
            hold: step.hold,
            keep_aside: self.guard.keep_aside(),
        }
    }

    /// The call of `request` finished and cost `cost` (currency). Returns whether it cost more
    /// than was held (it is charged anyway, and flagged).
    ///
    /// # Errors
    /// [`UnknownRequest`](ErrorKind::UnknownRequest) for an id not pending (never routed,
    /// expired or released), [`Duplicate`](ErrorKind::Duplicate) for a second settlement,
    /// [`NonFinite`](ErrorKind::NonFinite) / [`NegativeCost`](ErrorKind::NegativeCost) for a
    /// bad cost. Nothing changes on error.
    pub fn settle(&mut self, request: u64, cost: f64, now: u64) -> Result<bool> {
        self.expire_due(now)?;
        let event = self.settle_event(request, cost)?;
        let overrun = matches!(event, Event::Settle { overrun: true, .. });
        self.commit(now, event)?;
        Ok(overrun)
    }

    /// The event [`settle`](Self::settle) would commit, checked against the current state
    /// and not committed (no expiry runs): a replica commits it through a shared log, then
    /// [`apply`](Self::apply)s it.
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub fn settle_event(&self, request: u64, cost: f64) -> Result<Event> {
        let p = self.pending_entry(
            request,
            "Router::settle: no pending decision with this request id",
        )?;
        if p.settled {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::settle: request already settled",
            ));
        }
        let charged = self.guard.units(cost, "Router::settle: real cost")?;
        let overrun = charged > p.hold;
        Ok(Event::Settle {
            request,
            cost,
            overrun,
        })
    }

    /// The call of `request` failed before it cost anything (refused connection, 429, 5xx):
    /// its hold is returned and the decision forgotten (no feedback is expected).
    ///
    /// # Errors
    /// As [`settle`](Self::settle).
    pub fn release(&mut self, request: u64, now: u64) -> Result<()> {
        self.expire_due(now)?;
        let event = self.release_event(request)?;
        self.commit(now, event)
    }

    /// The event [`release`](Self::release) would commit, not committed (see
    /// [`settle_event`](Self::settle_event)).
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub fn release_event(&self, request: u64) -> Result<Event> {
        let p = self.pending_entry(
            request,
            "Router::release: no pending decision with this request id",
        )?;
        if p.settled {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::release: request already settled",
            ));
        }
        Ok(Event::Release { request })
    }

    /// The reward of `request`'s answer, in `[0, 1]`; may come before or after settlement.
    ///
    /// # Errors
    /// [`UnknownRequest`](ErrorKind::UnknownRequest) for an id never routed or expired,
    /// [`Duplicate`](ErrorKind::Duplicate) for a second feedback,
    /// [`OutOfRange`](ErrorKind::OutOfRange) / [`NonFinite`](ErrorKind::NonFinite) for a bad
    /// reward. Nothing changes on error.
    pub fn feedback(&mut self, request: u64, reward: f32, now: u64) -> Result<()> {
        self.expire_due(now)?;
        let event = self.feedback_event(request, reward, now)?;
        self.commit(now, event)
    }

    /// The event [`feedback`](Self::feedback) would commit at `now`, not committed (see
    /// [`settle_event`](Self::settle_event)).
    ///
    /// # Errors
    /// As [`feedback`](Self::feedback).
    pub fn feedback_event(&self, request: u64, reward: f32, now: u64) -> Result<Event> {
        Reward::new(reward)?;
        if !(0.0..=1.0).contains(&reward) {
            return Err(Error::out_of_range(
                "Router::feedback: reward",
                f64::from(reward),
                0.0,
                1.0,
            ));
        }
        let p = self.pending_entry(
            request,
            "Router::feedback: no pending decision with this request id (never routed, expired \
             or released)",
        )?;
        if p.rewarded {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::feedback: a reward for this request was already learned",
            ));
        }
        let delay = now.saturating_sub(p.at);
        Ok(Event::Feedback {
            request,
            reward,
            delay,
        })
    }

    /// Expires every decision whose deadline is at or before `now`.
    ///
    /// # Errors
    /// The cost policy's error when charging an expired hold.
    pub fn expire_due(&mut self, now: u64) -> Result<()> {
        while let Some(&(deadline, request)) = self.expiry.first() {
            if deadline > now {
                break;
            }
            let charged = self.pending.get(&request).is_some_and(|p| !p.settled);
            self.commit(now, Event::Expire { request, charged })?;
        }
        Ok(())
    }

    /// Adds an LLM to the pool while running, started from `start`. Returns its arm.
    ///
    /// # Errors
    /// [`Duplicate`](ErrorKind::Duplicate) for a name already in the pool,
    /// [`InvalidParameter`](ErrorKind::InvalidParameter) for a bad price; the policy's error
    /// for a bad vector or a policy that cannot grow. Nothing changes on error.
    pub fn add_arm(
        &mut self,
        name: &str,
        price: Price,
        start: ArmStart,
        now: u64,
    ) -> Result<ArmId> {
        let event = self.add_arm_event(name, price, start)?;
        self.commit(now, event)?;
        Ok(ArmId::new(self.arms.len() - 1))
    }

    /// The event [`add_arm`](Self::add_arm) would commit (its start resolved), not committed
    /// (see [`settle_event`](Self::settle_event)).
    ///
    /// # Errors
    /// As [`add_arm`](Self::add_arm).
    pub fn add_arm_event(&self, name: &str, price: Price, start: ArmStart) -> Result<Event> {
        if self.arm_named(name).is_some() {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::add_arm: an arm of that name is already in the pool",
            ));
        }
        if !price.is_valid() {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "Router::add_arm: price (finite, >= 0)",
            ));
        }
        let start = match start {
            ArmStart::Vector(v) => Some(v),
            ArmStart::Neutral => None,
            ArmStart::MeanOfOthers => self.mean_start(),
        };
        if let Some(v) = &start {
            pilot_core::check_len("Router::add_arm: start vector", v, self.policy.dim())?;
            pilot_core::check_finite("Router::add_arm: start vector", v)?;
        }
        Ok(Event::ArmAdded {
            name: name.into(),
            price,
            start,
        })
    }

    /// Disables (`enabled = false`) or re-enables an arm; what it learned is kept.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm).
    pub fn set_enabled(&mut self, arm: ArmId, enabled: bool, now: u64) -> Result<()> {
        let event = self.set_enabled_event(arm, enabled)?;
        self.commit(now, event)
    }

    /// The event [`set_enabled`](Self::set_enabled) would commit, not committed (see
    /// [`settle_event`](Self::settle_event)).
    ///
    /// # Errors
    /// As [`set_enabled`](Self::set_enabled).
    pub fn set_enabled_event(&self, arm: ArmId, enabled: bool) -> Result<Event> {
        self.check_arm(arm, "Router::set_enabled")?;
        Ok(Event::ArmEnabled {
            arm: arm_index(arm.index()),
            enabled,
        })
    }

    /// Changes an arm's price.
    ///
    /// # Errors
    /// [`UnknownArm`](ErrorKind::UnknownArm), [`InvalidParameter`](ErrorKind::InvalidParameter).
    pub fn set_price(&mut self, arm: ArmId, price: Price, now: u64) -> Result<()> {
        let event = self.set_price_event(arm, price)?;
        self.commit(now, event)
    }

    /// The event [`set_price`](Self::set_price) would commit, not committed (see
    /// [`settle_event`](Self::settle_event)).
    ///
    /// # Errors
    /// As [`set_price`](Self::set_price).
    pub fn set_price_event(&self, arm: ArmId, price: Price) -> Result<Event> {
        self.check_arm(arm, "Router::set_price")?;
        if !price.is_valid() {
            return Err(Error::new(
                ErrorKind::InvalidParameter,
                "Router::set_price: price (finite, >= 0)",
            ));
        }
        Ok(Event::PriceChanged {
            arm: arm_index(arm.index()),
            price,
        })
    }

    /// Raises or cuts the budget (currency), keeping what is spent and held.
    ///
    /// # Errors
    /// [`OverBudget`](ErrorKind::OverBudget) for a cut below spent + reserved (refused, nothing
    /// changes; the error carries the floor); [`NonFinite`](ErrorKind::NonFinite) /
    /// [`NegativeCost`](ErrorKind::NegativeCost) for a bad amount.
    pub fn set_budget(&mut self, budget: f64, now: u64) -> Result<()> {
        self.guard.check_budget(budget)?;
        self.commit(now, Event::BudgetChanged { budget })
    }

    /// Starts a new budget period with `budget` (currency): spent restarts at zero; open holds
    /// stay reserved.
    ///
    /// # Errors
    /// As [`set_budget`](Self::set_budget), against what open calls hold.
    pub fn new_period(&mut self, budget: f64, now: u64) -> Result<()> {
        self.guard.check_period(budget)?;
        self.commit(now, Event::NewPeriod { budget })
    }

    /// Folds one recorded event into the state: recovery and replicas call this on the log.
    ///
    /// # Errors
    /// [`VersionMismatch`](ErrorKind::VersionMismatch) for another format version,
    /// [`Corrupt`](ErrorKind::Corrupt) for a record out of sequence or one that does not fit
    /// the state (an unknown request, a wrong arm count). Nothing changes on error.
    pub fn apply(&mut self, record: &Record) -> Result<()> {
        if record.v != EVENT_VERSION {
            return Err(
                Error::new(ErrorKind::VersionMismatch, "Router::apply: event").with_detail(
                    Detail::Mismatch {
                        expected: usize::from(EVENT_VERSION),
                        found: usize::from(record.v),
                    },
                ),
            );
        }
        if record.seq != self.seq {
            return Err(
                Error::new(ErrorKind::Corrupt, "Router::apply: event sequence").with_detail(
                    Detail::Mismatch {
                        expected: usize::try_from(self.seq).unwrap_or(usize::MAX),
                        found: usize::try_from(record.seq).unwrap_or(usize::MAX),
                    },
                ),
            );
        }
        match &record.event {
            Event::Decision(d) => self.fold_decision(d, record.at)?,
            other => self.fold(other, record.at)?,
        }
        self.seq += 1;
        Ok(())
    }

    // ---- internals ----

    fn check_arm(&self, arm: ArmId, what: &'static str) -> Result<()> {
        if arm.index() >= self.arms.len() {
            return Err(Error::unknown_arm(what, arm.index(), self.arms.len()));
        }
        Ok(())
    }

    /// The small facts of a pending decision (not its context): hold, time, settled, rewarded;
    /// `missing` is the error's context when there is none.
    fn pending_entry(&self, request: u64, missing: &'static str) -> Result<PendingFacts> {
        self.pending
            .get(&request)
            .map(|p| PendingFacts {
                hold: p.hold,
                at: p.at,
                settled: p.settled,
                rewarded: p.rewarded,
            })
            .ok_or(Error::new(ErrorKind::UnknownRequest, missing))
    }

    fn mean_start(&self) -> Option<Vec<f32>> {
        let present: Vec<&Vec<f32>> = self.arms.iter().filter_map(|a| a.start.as_ref()).collect();
        let first = present.first()?;
        let mut mean = vec![0.0f32; first.len()];
        for v in &present {
            for (m, x) in mean.iter_mut().zip(v.iter()) {
                *m += x / present.len() as f32;
            }
        }
        Some(mean)
    }

    fn write_context(&mut self, input: Input<'_>) -> Result<()> {
        let dim = self.policy.dim();
        self.buf.context.resize(dim, 0.0);
        match input {
            Input::Context(c) => {
                pilot_core::check_len("Router::route: context", c, dim)?;
                pilot_core::check_finite("Router::route: context", c)?;
                self.buf.context.copy_from_slice(c);
            }
            Input::Base(x) => {
                let p = self.projection.as_ref().ok_or(Error::new(
                    ErrorKind::Unsupported,
                    "Router::route: a base vector needs a projection",
                ))?;
                p.context(x, &mut self.buf.context)?;
            }
            Input::Text(text) => {
                let e = self.embedder.as_mut().ok_or(Error::new(
                    ErrorKind::Unsupported,
                    "Router::route: text input needs an embedder",
                ))?;
                self.buf.base.resize(e.dim(), 0.0);
                e.embed(text, &mut self.buf.base)?;
                match &self.projection {
                    Some(p) => p.context(&self.buf.base, &mut self.buf.context)?,
                    None => {
                        pilot_core::check_len(
                            "Router::route: embedding (no projection: the policy's dimension)",
                            &self.buf.base,
                            dim,
                        )?;
                        self.buf.context.copy_from_slice(&self.buf.base);
                    }
                }
            }
        }
        Ok(())
    }

    fn write_quote(&mut self, quote: Quote<'_>) -> Result<()> {
        let k = self.arms.len();
        self.buf.resize(k);
        match quote {
            Quote::PerArm { estimate, worst } => {
                pilot_core::check_len("Router::route: estimate (one per arm)", estimate, k)?;
                pilot_core::check_len("Router::route: worst (one per arm)", worst, k)?;
                for a in 0..k {
                    let e = estimate[a];
                    if !e.is_finite() {
                        return Err(Error::non_finite("Router::route: estimated cost", e));
                    }
                    if e < 0.0 {
                        return Err(Error::new(
                            ErrorKind::NegativeCost,
                            "Router::route: estimated cost",
                        )
                        .with_detail(Detail::Index { index: a, len: k }));
                    }
                    self.buf.estimate[a] = e;
                    self.buf.worst[a] = self.guard.units(worst[a], "Router::route: worst cost")?;
                }
            }
            Quote::Tokens {
                input,
                expected_output,
                max_output,
            } => {
                for (a, arm) in self.arms.iter().enumerate() {
                    let out_max = if arm.price.max_output_tokens > 0 {
                        max_output.min(arm.price.max_output_tokens)
                    } else {
                        max_output
                    };
                    self.buf.estimate[a] = arm.price.cost(input, expected_output.min(out_max));
                    self.buf.worst[a] = self
                        .guard
                        .units(arm.price.cost(input, out_max), "Router::route: worst cost")?;
                }
            }
        }
        for (x, arm) in self.buf.excluded.iter_mut().zip(&self.arms) {
            *x = !arm.enabled;
        }
        Ok(())
    }

    fn open(&mut self, request: u64, arm: usize, context: Vec<f32>, hold: u64, now: u64) {
        let deadline = now.saturating_add(self.config.ttl);
        self.pending.insert(
            request,
            Pending {
                arm: arm_index(arm),
                context: Some(context),
                hold,
                at: now,
                deadline,
                settled: false,
                rewarded: false,
            },
        );
        self.expiry.insert((deadline, request));
        if let Some(a) = self.arms.get_mut(arm) {
            a.decisions += 1;
        }
    }

    fn push(&mut self, at: u64, event: Event) {
        self.log.push(Record {
            v: EVENT_VERSION,
            seq: self.seq,
            at,
            event,
        });
        self.seq += 1;
    }

    /// Folds a non-decision event and records it.
    fn commit(&mut self, at: u64, event: Event) -> Result<()> {
        self.fold(&event, at)?;
        if self.config.record {
            self.push(at, event);
        } else {
            self.seq += 1;
        }
        Ok(())
    }

    /// Replays a decision: the cost policy sees the same query, the ledger the same hold.
    fn fold_decision(&mut self, d: &DecisionEvent, at: u64) -> Result<()> {
        let k = self.arms.len();
        if d.arms.len() != k {
            return Err(Error::dimension(
                "Router::apply: decision arms",
                k,
                d.arms.len(),
            ));
        }
        let mut wide = Vec::with_capacity(k);
        let mut shown = Vec::with_capacity(k);
        let mut worst = Vec::with_capacity(k);
        let mut excluded = Vec::with_capacity(k);
        for c in &d.arms {
            wide.push(ArmScore {
                estimate: f64::from(c.estimate),
                width: f64::from(c.width),
                score: f64::from(c.score),
            });
            shown.push(c.cost);
            worst.push(c.worst);
            excluded.push(c.status == Status::Disabled);
        }
        if let Some(a) = d.chosen
            && (a as usize >= k || d.context.len() != self.policy.dim())
        {
            return Err(Error::new(ErrorKind::Corrupt, "Router::apply: decision"));
        }
        self.guard.set_keep_aside(d.keep_aside);
        self.guard.choose(&wide, &mut shown, &worst, &excluded)?;
        if let Some(a) = d.chosen {
            self.guard.hold_unchecked(d.hold);
            self.open(d.request, a as usize, d.context.clone(), d.hold, at);
        }
        Ok(())
    }

    fn fold(&mut self, event: &Event, at: u64) -> Result<()> {
        let corrupt = |what: &'static str| Error::new(ErrorKind::Corrupt, what);
        match event {
            Event::Decision(_) => return Err(corrupt("Router::fold: decision")),
            Event::Versions(v) => self.versions = v.clone(),
            Event::Settle { request, cost, .. } => {
                let p = self
                    .pending
                    .get_mut(request)
                    .ok_or(corrupt("settle of an unknown request"))?;
                let arm = ArmId::new(p.arm as usize);
                let charged = self.guard.units(*cost, "settle: cost")?;
                self.guard.settle(arm, p.hold, *cost)?;
                p.settled = true;
                if let Some(a) = self.arms.get_mut(arm.index()) {
                    a.spent = a.spent.saturating_add(charged);
                }
            }
            Event::Release { request } => {
                let p = self
                    .pending
                    .remove(request)
                    .ok_or(corrupt("release of an unknown request"))?;
                if let Err(e) = self.guard.release(p.hold) {
                    self.pending.insert(*request, p);
                    return Err(e);
                }
                self.expiry.remove(&(p.deadline, *request));
            }
            Event::Feedback {
                request, reward, ..
            } => {
                let p = self
                    .pending
                    .get_mut(request)
                    .ok_or(corrupt("feedback of an unknown request"))?;
                let context = p.context.as_ref().ok_or(corrupt("feedback twice"))?;
                let arm = ArmId::new(p.arm as usize);
                self.policy.update(arm, context, Reward::new(*reward)?)?;
                p.context = None;
                p.rewarded = true;
                if let Some(a) = self.arms.get_mut(arm.index()) {
                    a.feedbacks += 1;
                    a.reward_sum += f64::from(*reward);
                }
            }
            Event::Expire { request, charged } => {
                let (arm, hold, deadline) = self
                    .pending
                    .get(request)
                    .map(|p| (p.arm as usize, p.hold, p.deadline))
                    .ok_or(corrupt("expiry of an unknown request"))?;
                if *charged {
                    self.guard.expire(ArmId::new(arm), hold)?;
                    if let Some(a) = self.arms.get_mut(arm) {
                        a.spent = a.spent.saturating_add(hold);
                    }
                }
                self.pending.remove(request);
                self.expiry.remove(&(deadline, *request));
            }
            Event::ArmAdded { name, price, start } => {
                let k = self.arms.len();
                self.guard.set_arm_count(k + 1)?;
                if let Err(e) = self.policy.add_arm(start.as_deref()) {
                    self.guard.set_arm_count(k)?;
                    return Err(e);
                }
                let mut arm = Arm::new(name.clone(), *price);
                arm.start = start.clone();
                self.arms.push(arm);
                self.buf.resize(k + 1);
            }
            Event::ArmEnabled { arm, enabled } => {
                self.arms
                    .get_mut(*arm as usize)
                    .ok_or(corrupt("unknown arm"))?
                    .enabled = *enabled;
            }
            Event::PriceChanged { arm, price } => {
                self.arms
                    .get_mut(*arm as usize)
                    .ok_or(corrupt("unknown arm"))?
                    .price = *price;
            }
            Event::BudgetChanged { budget } => self.guard.set_budget(*budget)?,
            Event::NewPeriod { budget } => self.guard.new_period(*budget)?,
        }
        let _ = at;
        Ok(())
    }
}

impl<P: LivePolicy, C: LiveCost, E: Embedder> Router<P, C, E> {
    /// Decides for `request` as [`route_excluding`](Self::route_excluding) would, on the
    /// current state, and returns the decision with its event **without committing it**: the
    /// router is left as it was (the cost policy's and the guard's state are put back; the
    /// policy's `select` must leave its learned state alone, as the bandit policies' does).
    /// No expiry runs. A replica commits the event through a shared log and folds it with
    /// [`apply`](Self::apply) at its place in that log; folded right away it gives the same
    /// state as `route_excluding`.
    ///
    /// # Errors
    /// As [`route_excluding`](Self::route_excluding); the cost policy's snapshot error.
    pub fn propose(
        &mut self,
        request: u64,
        input: Input<'_>,
        quote: Quote<'_>,
        exclude: &[bool],
        rng: &mut dyn RngCore,
    ) -> Result<(Decision, Event)> {
        if self.pending.contains_key(&request) {
            return Err(Error::new(
                ErrorKind::Duplicate,
                "Router::propose: request id already pending",
            ));
        }
        let cost = self.guard.inner().save_vec()?;
        let words = self.guard.words();
        let out = self.step(request, input, quote, exclude, rng);
        self.guard.inner_mut().restore(&cost)?;
        self.guard.restore_words(words);
        let (decision, step) = out?;
        let event = Event::Decision(self.decision_event(request, &decision, &step));
        Ok((decision, event))
    }

    /// Saves everything learned and owed: policy, cost policy, ledger, arms, pending decisions,
    /// and the position of the next event.
    ///
    /// # Errors
    /// The policy's or cost policy's snapshot error.
    pub fn save(&self) -> Result<Vec<u8>> {
        let saved = Saved {
            version: EVENT_VERSION,
            seq: self.seq,
            policy: self.policy.save_vec()?,
            cost: self.guard.inner().save_vec()?,
            guard: self.guard.words(),
            arms: self.arms.clone(),
            pending: self.pending.iter().map(|(k, v)| (*k, v.clone())).collect(),
            versions: self.versions.clone(),
        };
        let payload = postcard::to_allocvec(&saved)
            .map_err(|_| Error::new(ErrorKind::Corrupt, "Router::save: encoding"))?;
        let mut out = vec![0u8; pilot_core::envelope::HEADER_LEN + payload.len()];
        out[pilot_core::envelope::HEADER_LEN..].copy_from_slice(&payload);
        pilot_core::envelope::seal(&mut out, SNAPSHOT_MAGIC, EVENT_VERSION, payload.len())?;
        Ok(out)
    }

    /// Restores a [`save`](Self::save)d state into this router, built with the same policy
    /// type, cost policy and settings. The pool grows to the saved one first.
    ///
    /// # Errors
    /// The envelope's errors for damaged bytes, [`Corrupt`](ErrorKind::Corrupt) for a payload
    /// that does not decode, the policy's or cost policy's restore error. On error the router
    /// may have grown its pool but holds no half-restored learned state.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let payload = pilot_core::envelope::open(bytes, SNAPSHOT_MAGIC, EVENT_VERSION)?;
        let saved: Saved = postcard::from_bytes(payload)
            .map_err(|_| Error::new(ErrorKind::Corrupt, "Router::restore: payload"))?;
        if saved.arms.len() < self.arms.len() {
            return Err(Error::dimension(
                "Router::restore: arms (the snapshot has fewer than this router)",
                self.arms.len(),
                saved.arms.len(),
            ));
        }
        while self.policy.arm_count() < saved.arms.len() {
            self.policy.add_arm(None)?;
        }
        self.guard.set_arm_count(saved.arms.len())?;
        self.policy.restore(&saved.policy)?;
        self.guard.inner_mut().restore(&saved.cost)?;
        self.guard.restore_words(saved.guard);
        self.arms = saved.arms;
        self.pending = saved.pending.into_iter().collect();
        self.expiry = self
            .pending
            .iter()
            .map(|(&request, p)| (p.deadline, request))
            .collect();
        self.versions = saved.versions;
        self.seq = saved.seq;
        self.buf.resize(self.arms.len());
        Ok(())
    }
}
