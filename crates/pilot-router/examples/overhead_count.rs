//! Runs N route + settle + feedback steps (or N bare select + update steps) for an instruction
//! count under `valgrind --tool=callgrind`: `overhead_count bare|router|router-events N`.
//! Instruction counts repeat exactly on a busy machine, where the criterion bench's times do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::{K, bare_step, contexts, policy, router, router_step};
use pilot_core::ArmScore;
use rand_pcg::Pcg64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("router", String::as_str);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let xs = contexts();
    let mut rng = Pcg64::new(2, 2);
    if mode == "bare" {
        let mut p = policy();
        let mut scores = [ArmScore::<f32>::default(); K];
        for i in 0..n {
            bare_step(&mut p, &xs[i as usize % xs.len()], i, &mut rng, &mut scores);
        }
        println!("bare: {n} steps");
        return;
    }
    let mut r = router(mode == "router-events");
    let mut events = 0usize;
    for i in 0..n {
        events += router_step(&mut r, &xs[i as usize % xs.len()], i, &mut rng);
    }
    println!("{mode}: {n} steps, {events} events");
}
