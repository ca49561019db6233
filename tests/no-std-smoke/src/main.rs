//! The no-allocator proof: a Cortex-M4F firmware with no global allocator that runs one
//! embed → project → score step with the core crates, checks the numbers, prints through
//! semihosting and exits 0 when every step passed, 1 otherwise.
//!
//! Each check is one function in [`STEPS`]; a crate that gains a no-alloc API gets a step by
//! adding one function and one line there.
#![no_std]
#![no_main]

use core::fmt;
use core::panic::PanicInfo;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use pilot_bandit::{LinUcb, LinUcbFixed};
use pilot_budget::{
    ClassSlot, CoreScratch, CoreSolver, Increment, ItemSlot, OnlineConfig, Record, Scratch, State,
    ThresholdParams, ThresholdPolicy,
};
use pilot_core::{
    ArmId, ArmScore, Cost, CostPolicy, Decision, Embedder, Error, ErrorKind, MckpInstance,
    MckpSolver, PolicyExt, Real, Snapshot, argmax_score,
};
use pilot_embed::{fixed, hashing::HashingEmbedder};
use rand_core::SeedableRng;

/// Why a step failed: what was checked, and the library error if one was returned.
struct Failure {
    what: &'static str,
    error: Option<Error>,
}

impl Failure {
    const fn check(what: &'static str) -> Self {
        Self { what, error: None }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{}: {e}", self.what),
            None => f.write_str(self.what),
        }
    }
}

/// Turns a library error into a failure that says which call it came from.
fn call<T>(what: &'static str, r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure {
        what,
        error: Some(e),
    })
}

fn ensure(ok: bool, what: &'static str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::check(what))
    }
}

type Step = fn() -> Result<(), Failure>;

/// Every check, in order; a new no-alloc crate adds one function and one line here.
const STEPS: &[(&str, Step)] = &[
    ("libm square roots are correctly rounded", libm_sqrt),
    ("hashing embedder gives the host's exact bits", hashing_bits),
    (
        "embed -> project -> score picks the expected arm",
        embed_project_score,
    ),
    (
        "rank-1 inverse update and Cholesky match closed forms",
        rank_one_and_cholesky,
    ),
    ("bad input returns errors instead of panicking", bad_input),
    (
        "PILOT (LinUCB with a prior) selects, learns and snapshots",
        bandit_step,
    ),
    (
        "knapsack solved exactly; online threshold policy stays in budget",
        budget_step,
    ),
    (
        "router step: embed -> Projection -> PILOT -> guard holds, settles, learns",
        router_step,
    ),
];

/// The embedding of "hello world" at D = 16 as signed feature counts; the host test
/// `outputs_are_pinned` in pilot-embed pins the same vector (‖counts‖² = 14).
const HELLO_WORLD_COUNTS: [i8; 16] = [0, -1, -1, 0, -1, 0, 1, -1, 0, 1, 0, 0, -2, 0, 0, -2];
/// 1/√14 as `f32`, the bits the host computes.
const INV_SQRT_14_BITS: u32 = 0x3e88_d677;

fn libm_sqrt() -> Result<(), Failure> {
    ensure(
        <f32 as Real>::sqrt(2.0).to_bits() == 0x3fb5_04f3,
        "f32 sqrt(2) is not the correctly rounded 0x3fb504f3",
    )?;
    ensure(
        <f64 as Real>::sqrt(2.0).to_bits() == 0x3ff6_a09e_667f_3bcd,
        "f64 sqrt(2) is not the correctly rounded 0x3ff6a09e667f3bcd",
    )?;
    ensure(
        <f32 as Real>::sqrt(14.0).recip().to_bits() == INV_SQRT_14_BITS,
        "f32 1/sqrt(14) differs from the host",
    )?;
    for k in 1..=1000u32 {
        let x = k as f32 * 0.25;
        ensure(<f32 as Real>::sqrt(x * x) == x, "f32 sqrt(x²) != x")?;
        let y = f64::from(k) * 1.5;
        ensure(<f64 as Real>::sqrt(y * y) == y, "f64 sqrt(x²) != x")?;
    }
    Ok(())
}

fn hashing_bits() -> Result<(), Failure> {
    let mut embedder = call("HashingEmbedder::new", HashingEmbedder::new(16))?;
    ensure(embedder.id() == "hash-v1:d=16", "embedder id")?;
    let mut x = [0.0f32; 16];
    call("embed", embedder.embed("Hello, world!", &mut x))?;
    for (v, c) in x.iter().zip(HELLO_WORLD_COUNTS) {
        let want = match c {
            0 => 0,
            1 => INV_SQRT_14_BITS,
            -1 => INV_SQRT_14_BITS | 0x8000_0000,
            _ => 0xbf08_d677, // -2/√14
        };
        ensure(v.to_bits() == want, "embedding bits differ from the host")?;
    }
    Ok(())
}

fn embed_project_score() -> Result<(), Failure> {
    let mut x = [0.0f32; 16];
    call(
        "embed",
        HashingEmbedder::new(16).and_then(|mut e| e.embed("hello world", &mut x)),
    )?;
    // Fold the 16 buckets onto 4 coordinates (bucket c adds to coordinate c mod 4): with the
    // counts above, z = (-3, 0, 0, -3)/√14, so normalize(z) = (-1, 0, 0, -1)/√2.
    let mut w = [[0.0f32; 16]; 4];
    for (r, row) in w.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            if c % 4 == r {
                *v = 1.0;
            }
        }
    }
    let mut z = call("project", fixed::project(&w, &x))?;
    call("normalize", fixed::normalize(&mut z))?;
    let h = core::f32::consts::FRAC_1_SQRT_2;
    let close = |a: f32, b: f32| (a - b).abs() <= 2.0 * f32::EPSILON;
    ensure(
        close(z[0], -h) && z[1] == 0.0 && z[2] == 0.0 && close(z[3], -h),
        "projected vector",
    )?;
    // Four arms as unit vectors in the shared space; arm 2 points along z.
    let arms = [
        [1.0f32, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [-0.6, 0.0, 0.0, -0.8],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let mut scores = [ArmScore::<f32>::default(); 4];
    for (s, arm) in scores.iter_mut().zip(&arms) {
        let mu = call("dot", fixed::dot(arm, &z))?;
        *s = ArmScore {
            estimate: mu,
            width: 0.0,
            score: mu,
        };
    }
    ensure(
        argmax_score(&scores) == Some(ArmId::new(2)),
        "argmax is not arm 2",
    )?;
    ensure(
        (scores[2].score - 1.4 * h).abs() <= 4.0 * f32::EPSILON,
        "arm 2 score is not 1.4/√2",
    )
}

fn rank_one_and_cholesky() -> Result<(), Failure> {
    // (I + x·xᵀ)⁻¹ for x = (1, 2) is [[5, -2], [-2, 2]] / 6.
    let mut a_inv = [[1.0f32, 0.0], [0.0, 1.0]];
    call(
        "sherman_morrison",
        fixed::sherman_morrison(&mut a_inv, &[1.0, 2.0], 1.0),
    )?;
    let want = [[5.0 / 6.0, -2.0 / 6.0], [-2.0 / 6.0, 2.0 / 6.0]];
    for (g, w) in a_inv.as_flattened().iter().zip(want.as_flattened()) {
        ensure((g - w).abs() <= 4.0 * f32::EPSILON, "updated inverse")?;
    }
    let l = call("cholesky", fixed::cholesky(&[[4.0f64, 2.0], [2.0, 3.0]]))?;
    ensure(
        l == [[2.0, 0.0], [1.0, <f64 as Real>::sqrt(2.0)]],
        "Cholesky factor of [[4, 2], [2, 3]]",
    )
}

fn bad_input() -> Result<(), Failure> {
    let expect = |r: Result<(), Error>, kind: ErrorKind, what: &'static str| match r {
        Err(e) if e.kind() == kind => Ok(()),
        _ => Err(Failure::check(what)),
    };
    let mut e = call("HashingEmbedder::new", HashingEmbedder::new(16))?;
    let mut out = [0.0f32; 16];
    expect(
        e.embed(" \t ... ", &mut out),
        ErrorKind::ZeroVector,
        "text without words",
    )?;
    let mut short = [0.0f32; 15];
    expect(
        e.embed("hello", &mut short),
        ErrorKind::DimensionMismatch,
        "short buffer",
    )?;
    expect(
        fixed::dot(&[f32::NAN, 1.0], &[1.0, 1.0]).map(|_| ()),
        ErrorKind::NonFinite,
        "NaN in dot",
    )?;
    expect(
        fixed::cosine(&[0.0f32; 3], &[1.0; 3]).map(|_| ()),
        ErrorKind::ZeroVector,
        "cosine of a zero vector",
    )?;
    expect(
        fixed::cholesky(&[[1.0f32, 2.0], [2.0, 1.0]]).map(|_| ()),
        ErrorKind::NotPositiveDefinite,
        "indefinite matrix",
    )
}

/// Stack high-water mark: paint the unused stack, run the steps, find the deepest overwrite.
mod stack {
    /// Bytes below `main`'s frame that are painted and checked.
    const WINDOW: usize = 32 * 1024;
    /// Left unpainted just below `main`'s frame, where `paint` itself runs.
    const MARGIN: usize = 512;
    const PATTERN: u32 = 0xdead_beef;

    /// An address inside the caller's frame, standing for the stack pointer there.
    #[inline(always)]
    pub fn here() -> usize {
        let probe = 0u32;
        core::ptr::addr_of!(probe) as usize
    }

    /// Fills `[top - WINDOW, top - MARGIN)` with the pattern.
    #[inline(never)]
    pub fn paint(top: usize) {
        let mut a = (top - WINDOW) & !3;
        while a < top - MARGIN {
            // SAFETY: the stack occupies the top of the 4 MiB RAM (memory.x) and grows down;
            // this window lies below every live frame and above .bss, so it is unused memory.
            #[allow(unsafe_code)]
            unsafe {
                core::ptr::write_volatile(a as *mut u32, PATTERN)
            };
            a += 4;
        }
    }

    /// Bytes of stack used below `top` since `paint(top)` (a lower bound of the true peak).
    #[inline(never)]
    pub fn used(top: usize) -> usize {
        let mut a = (top - WINDOW) & !3;
        while a < top - MARGIN {
            // SAFETY: reads the window written by `paint`.
            #[allow(unsafe_code)]
            let v = unsafe { core::ptr::read_volatile(a as *const u32) };
            if v != PATTERN {
                break;
            }
            a += 4;
        }
        top - a
    }
}

/// PILOT on two arms in 4 dimensions, stored inline (`LinUcbFixed`, no allocator).
///
/// Arm 0 starts from the prior θ₀ = (0.9, 0.1, 0, 0), arm 1 from zero, λ = 1, α = 0.5. After
/// reward 0.8 for arm 0 on x = e₀: A = diag(2, 1, 1, 1), b = θ₀ + 0.8·e₀, so θ̂·x = 1.7/2 =
/// 0.85 and the width √(xᵀA⁻¹x) = √½.
fn bandit_step() -> Result<(), Failure> {
    let config = call(
        "LinUcb::params",
        LinUcb::params()
            .alpha(0.5)
            .lambda(1.0)
            .reward_range(0.0, 1.0)
            .discount(1.0)
            .check(),
    )?;
    let prior = [0.9f32, 0.1, 0.0, 0.0];
    let mut policy = call(
        "LinUcbFixed::with_priors",
        LinUcbFixed::<2, 4>::with_priors(config, &[Some(&prior), None], 4),
    )?;
    let mut rng = rand_pcg::Pcg32::seed_from_u64(7);
    let x = [1.0f32, 0.0, 0.0, 0.0];
    let (arm, _) = call("select", policy.select_array::<2>(&x, &mut rng))?;
    ensure(arm == ArmId(0), "the prior should pick arm 0")?;
    call("observe", policy.observe(arm, &x, 0.8))?;
    let (_, scores) = call("select", policy.select_array::<2>(&x, &mut rng))?;
    let h = core::f32::consts::FRAC_1_SQRT_2;
    ensure(
        (scores[0].estimate - 0.85).abs() <= 4.0 * f32::EPSILON
            && (scores[0].width - h).abs() <= 4.0 * f32::EPSILON,
        "arm 0 after one update: estimate 0.85, width √½",
    )?;
    ensure(
        scores[1].estimate == 0.0 && scores[1].width == 1.0 && scores[1].score == 0.5,
        "untouched arm 1: estimate 0, width 1, score α",
    )?;
    // A reward outside [0, 1] is refused and changes nothing.
    match policy.observe(arm, &x, 7.0) {
        Err(e) if e.kind() == ErrorKind::OutOfRange => {}
        _ => return Err(Failure::check("reward 7 should be OutOfRange")),
    }
    let (_, again) = call("select", policy.select_array::<2>(&x, &mut rng))?;
    ensure(again == scores, "state changed after a refused update")?;
    // Snapshot into a stack buffer and restore into a fresh policy.
    let mut bytes = [0u8; LinUcbFixed::<2, 4>::SNAPSHOT_LEN];
    let n = call("save", policy.save(&mut bytes))?;
    let mut copy = call("LinUcbFixed::new", LinUcbFixed::<2, 4>::new(config, 2, 4))?;
    call("restore", copy.restore(bytes.get(..n).unwrap_or(&[])))?;
    let (_, restored) = call("select", copy.select_array::<2>(&x, &mut rng))?;
    ensure(restored == scores, "restored policy scores differently")
}

/// Offline: two queries × three LLMs under budget 10, solved exactly in caller-provided
/// scratch (the best is LLM 1 for both: cost 4 + 5, quality 0.8 + 0.9). Online: thirty
/// queries through the threshold policy with budget 10, charged as they go.
fn budget_step() -> Result<(), Failure> {
    let weights = [1, 4, 9, 2, 5, 8];
    let profits = [0.5, 0.8, 0.9, 0.4, 0.9, 0.95];
    let instance = call(
        "MckpInstance::new",
        MckpInstance::new(10, &weights, &profits, &[3, 6]),
    )?;
    let (mut items, mut incs) = ([ItemSlot::default(); 6], [Increment::default(); 6]);
    let mut classes = [ClassSlot::default(); 2];
    let (mut cur, mut next) = ([State::default(); 64], [State::default(); 64]);
    let mut records = [Record::default(); 256];
    let mut solver = CoreSolver::new(
        Scratch::new(&mut items, &mut incs, &mut classes),
        CoreScratch::new(&mut cur, &mut next, &mut records),
    );
    let mut choice = [0; 2];
    let solution = call("CoreSolver::solve", solver.solve(&instance, &mut choice))?;
    ensure(choice == [1, 1], "exact MCKP choice should be [1, 1]")?;
    ensure(
        (solution.value - 1.7).abs() < 1e-12,
        "exact MCKP value should be 1.7",
    )?;
    ensure(
        solution.bound.is_some_and(|b| b >= solution.value),
        "LP bound below the optimum",
    )?;

    let params = call("ThresholdParams::new", ThresholdParams::new(1.0, 0.05))?;
    let mut policy = call(
        "ThresholdPolicy::new",
        ThresholdPolicy::new(OnlineConfig::new(3, 10.0f32), params),
    )?;
    let scores = [
        ArmScore::certain(0.5),
        ArmScore::certain(0.8),
        ArmScore::certain(0.9),
    ];
    let costs = [1.0f32, 4.0, 9.0];
    let (mut routed, mut exhausted) = (0, 0);
    for _ in 0..30 {
        match call("choose", policy.choose(&scores, &costs))? {
            Decision::Route(arm) => {
                let cost = costs.get(arm.index()).copied().unwrap_or(f32::NAN);
                call(
                    "charge",
                    Cost::new(cost).and_then(|c| policy.charge(arm, c)),
                )?;
                routed += 1;
            }
            Decision::BudgetExhausted => exhausted += 1,
        }
        ensure(policy.state().spent <= 10.0, "online policy overspent")?;
    }
    ensure(
        routed > 0 && exhausted > 0,
        "30 queries at cost ≥ 1 under budget 10: some routed, then exhausted",
    )
}

/// The router's decision step on stack buffers: text → hashing embedder → the prior's
/// `Projection` → PILOT scores → the budget guard around the threshold policy → a hold → the
/// real cost settled → the reward learned. Then the budget runs out and nothing is held.
fn router_step() -> Result<(), Failure> {
    use pilot_budget::Guard;
    use pilot_embed::Projection;
    use pilot_router::{Exploration, Status, StepInput, StepScratch, decide};

    let mut x = [0.0f32; 16];
    call(
        "embed",
        HashingEmbedder::new(16).and_then(|mut e| e.embed("hello world", &mut x)),
    )?;
    // The prior's map, in flash: bucket c adds to coordinate c mod 3.
    let mut w = [0.0f32; 3 * 16];
    for (i, v) in w.iter_mut().enumerate() {
        if (i % 16) % 3 == i / 16 {
            *v = 1.0;
        }
    }
    let projection = call(
        "Projection::new",
        Projection::new(&w[..], &[0.0f32, 0.0, 0.1][..], 16),
    )?;
    let mut context = [0.0f32; 4];
    call("Projection::context", projection.context(&x, &mut context))?;
    ensure(context[3] == 1.0, "context ends with the bias term 1")?;
    let config = call(
        "LinUcb::params",
        LinUcb::params()
            .alpha(0.1)
            .lambda(4.0)
            .reward_range(0.0, 1.0)
            .check(),
    )?;
    let priors = [
        [0.2f32, 0.1, 0.0, 0.5],
        [0.1, 0.1, 0.1, 0.6],
        [0.0, 0.0, 0.2, 0.3],
    ];
    let mut policy = call(
        "LinUcbFixed::with_priors",
        LinUcbFixed::<3, 4>::with_priors(
            config,
            &[Some(&priors[0]), Some(&priors[1]), Some(&priors[2])],
            4,
        ),
    )?;
    let params = call("ThresholdParams::new", ThresholdParams::new(1000.0, 1.0))?;
    let inner = call(
        "ThresholdPolicy::new",
        ThresholdPolicy::new(OnlineConfig::new(3, 0.01f64), params),
    )?;
    let mut guard = call("Guard::new", Guard::new(inner, 0.01, 1e9))?;
    let estimate = [0.001f64, 0.004, 0.0005];
    let worst_usd = [0.002f64, 0.008, 0.001];
    let mut worst = [0u64; 3];
    for (u, &c) in worst.iter_mut().zip(&worst_usd) {
        *u = call("Guard::units", guard.units(c, "worst"))?;
    }
    let excluded = [false, false, true];
    let mut rng = rand_pcg::Pcg32::seed_from_u64(11);
    let (mut scores, mut wide) = (
        [ArmScore::<f32>::default(); 3],
        [ArmScore::<f64>::default(); 3],
    );
    let (mut shown, mut probability) = ([0.0f64; 3], [0.0f64; 3]);
    let mut status = [Status::Candidate; 3];
    let mut held = 0u64;
    let mut calls = 0u32;
    for round in 0..40 {
        let step = call(
            "decide",
            decide(
                &mut policy,
                &mut guard,
                StepInput {
                    context: &context,
                    estimate: &estimate,
                    worst: &worst,
                    excluded: &excluded,
                },
                Exploration::Argmax,
                &mut rng,
                StepScratch {
                    scores: &mut scores,
                    wide: &mut wide,
                    shown: &mut shown,
                    probability: &mut probability,
                    status: &mut status,
                },
            ),
        )?;
        ensure(
            status[2] == Status::Disabled,
            "the disabled arm is reported",
        )?;
        let Some(arm) = step.arm else {
            ensure(
                round > 0 && step.hold == 0,
                "nothing held when nothing fits",
            )?;
            break;
        };
        ensure(arm.index() != 2, "a disabled arm was chosen")?;
        ensure(step.propensity == 1.0, "argmax propensity is 1")?;
        held = step.hold;
        let real = worst_usd[arm.index()] * 0.75;
        call("Guard::settle", guard.settle(arm, step.hold, real))?;
        call("learn", policy.observe(arm, &context, 1.0))?;
        calls += 1;
        let l = guard.ledger();
        ensure(
            l.spent <= l.budget && l.reserved == 0,
            "router step overspent",
        )?;
    }
    ensure(calls > 0 && held > 0, "the router step routed some calls")?;
    ensure(
        guard.ledger().available() < worst[0].min(worst[1]),
        "the budget ran out before 40 calls",
    )
}

#[entry]
fn main() -> ! {
    let top = stack::here();
    stack::paint(top);
    let mut failed = 0usize;
    for (name, step) in STEPS {
        match step() {
            Ok(()) => hprintln!("ok   {}", name),
            Err(f) => {
                failed += 1;
                hprintln!("FAIL {}: {}", name, f);
            }
        }
    }
    hprintln!(
        "stack used by the steps: {} bytes (heap: none, no allocator linked)",
        stack::used(top)
    );
    hprintln!(
        "no-std-smoke: {} passed, {} failed",
        STEPS.len() - failed,
        failed
    );
    debug::exit(if failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("no-std-smoke: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
