//! Engine invariants: bandit feedback only, budget held against real costs, determinism,
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! parallel grid = sequential grid, offline optimum = brute force.

use std::cell::RefCell;
use std::rc::Rc;

use pilot_core::{
    ArmId, ArmScore, BudgetState, Cost, CostPolicy, Decision, MckpInstance, MckpSolution,
    MckpSolver, Policy, Reward, RngCore, argmax_score,
};
use pilot_sim::grid::{CostPolicySpec, Grid, PolicySpec};
use pilot_sim::{
    ContextTable, CostModel, Episode, Problem, Queries, Scenario, deployment_order, run_episode,
};

const K: usize = 3;

/// A problem with `n` deployment queries whose qualities and costs follow a fixed pattern.
fn problem(n: usize) -> Problem {
    let mut learning = Queries::default();
    let mut deployment = Queries::default();
    for i in 0..n {
        let x = [(i % 5) as f32 / 5.0, 1.0];
        let q = [(i % 2) as f32, ((i + 1) % 3 == 0) as u8 as f32, 0.5];
        let c = [0.010 + 0.001 * (i % 4) as f64, 0.002, 0.0005];
        learning.push(format!("l{i}"), i % 2, &x, &q, &c);
        deployment.push(format!("d{i}"), i % 2, &x, &q, &c);
    }
    Problem::new(
        vec!["big".into(), "mid".into(), "small".into()],
        vec!["even".into(), "odd".into()],
        2,
        learning,
        deployment,
        0,
    )
    .unwrap()
}

fn contexts(p: &Problem) -> ContextTable {
    ContextTable::from_rows("base", 2, p.deployment().base.clone()).unwrap()
}

/// Estimates at 80 % of the real cost (the router underestimates), upper bounds at 120 %.
fn costs(p: &Problem) -> CostModel {
    let real = &p.deployment().cost;
    CostModel::from_tables(
        K,
        real.iter().map(|c| c * 0.8).collect(),
        real.iter().map(|c| c * 1.2).collect(),
        0.0006,
    )
    .unwrap()
}

/// Records every update and checks it against the real table.
struct Spy {
    table: Problem,
    updates: Rc<RefCell<Vec<(usize, f32)>>>,
    pick: usize,
}

impl Policy<f32> for Spy {
    fn dim(&self) -> usize {
        2
    }
    fn arm_count(&self) -> usize {
        K
    }
    fn select(
        &mut self,
        _context: &[f32],
        rng: &mut dyn RngCore,
        scores: &mut [ArmScore<f32>],
    ) -> pilot_core::Result<ArmId> {
        let noise = (rng.next_u32() % 1000) as f32 / 1e6;
        for (a, s) in scores.iter_mut().enumerate() {
            *s = ArmScore::certain(if a == self.pick { 1.0 } else { noise });
        }
        Ok(argmax_score(scores).unwrap())
    }
    fn update(&mut self, arm: ArmId, _c: &[f32], reward: Reward<f32>) -> pilot_core::Result<()> {
        let _ = &self.table;
        self.updates.borrow_mut().push((arm.index(), reward.get()));
        Ok(())
    }
}

impl pilot_core::GrowPool<f32> for Spy {
    fn add_arm(&mut self, _prior: Option<&[f32]>) -> pilot_core::Result<ArmId> {
        Err(pilot_core::ErrorKind::Unsupported.into())
    }
}

/// Follows the policy's argmax, whatever the budget says (so the engine's guard must act).
struct Reckless {
    state: BudgetState<f64>,
}

impl CostPolicy<f64> for Reckless {
    fn choose(&mut self, scores: &[ArmScore<f64>], _costs: &[f64]) -> pilot_core::Result<Decision> {
        Ok(Decision::Route(argmax_score(scores).unwrap()))
    }
    fn charge(&mut self, _arm: ArmId, cost: Cost<f64>) -> pilot_core::Result<()> {
        self.state.spent += cost.get();
        Ok(())
    }
    fn state(&self) -> BudgetState<f64> {
        self.state
    }
}

fn run(
    p: &Problem,
    pick: usize,
    budget: f64,
    seed: u64,
) -> (pilot_sim::Outcome, Vec<(usize, f32)>) {
    let ctx = contexts(p);
    let cm = costs(p);
    let order = deployment_order(p, Scenario::Standard, seed);
    let updates = Rc::new(RefCell::new(Vec::new()));
    let mut policy = Spy {
        table: p.clone(),
        updates: updates.clone(),
        pick,
    };
    let mut cp = Reckless {
        state: BudgetState { budget, spent: 0.0 },
    };
    let ep = Episode {
        log: false,
        exploration: pilot_router::Exploration::Argmax,
        problem: p,
        contexts: &ctx,
        costs: &cm,
        order: &order,
        budget,
        seed,
    };
    let out = run_episode(&ep, &mut policy, &mut cp).unwrap();
    let u = updates.borrow().clone();
    (out, u)
}

#[test]
fn only_the_called_arm_is_revealed_and_matches_the_table() {
    let p = problem(40);
    let (out, updates) = run(&p, 0, 1.0, 3);
    let order = deployment_order(&p, Scenario::Standard, 3);
    let served: Vec<(usize, usize)> = out
        .choices
        .iter()
        .zip(&order)
        .filter_map(|(c, &i)| c.map(|a| (i, a)))
        .collect();
    assert_eq!(
        updates.len(),
        served.len(),
        "one update per served query, none otherwise"
    );
    for ((i, a), (ua, r)) in served.iter().zip(&updates) {
        assert_eq!(a, ua);
        assert_eq!(*r, p.deployment().quality[i * K + a]);
    }
    assert_eq!(out.served + out.unserved, 40);
}

#[test]
fn budget_holds_against_real_costs_when_estimates_are_low() {
    let p = problem(60);
    // Always wanting the expensive arm: ~0.0115 per query; budget for ~20 of them.
    for budget in [0.0, 0.01, 0.05, 0.25, 10.0] {
        let (out, updates) = run(&p, 0, budget, 1);
        assert!(out.budget_held, "budget {budget}");
        assert!(out.cost <= budget + 1e-12, "spent {} of {budget}", out.cost);
        assert_eq!(out.served, updates.len());
        if budget == 10.0 {
            assert_eq!(out.overridden, 0);
            assert!(out.choices.iter().all(|&c| c == Some(0)));
        }
        if budget == 0.0 {
            assert_eq!(out.unserved, 60);
        }
    }
    // With a budget covering the reserve, the guard keeps every query served.
    let (out, _) = run(&p, 0, 0.25, 1);
    assert_eq!(out.unserved, 0);
    assert!(out.overridden > 0);
}

#[test]
fn regret_is_cumulative_against_the_oracle() {
    let p = problem(30);
    let (out, _) = run(&p, 2, 10.0, 5);
    let oracle = p.oracle();
    let order = deployment_order(&p, Scenario::Standard, 5);
    let mut expected = 0.0f32;
    for (t, &i) in order.iter().enumerate() {
        expected += oracle[i].1 - 0.5;
        assert!((out.regret[t] - expected).abs() < 1e-5);
    }
    assert!((out.quality - 15.0).abs() < 1e-9);
}

#[test]
fn runs_replay_exactly_from_a_seed() {
    let p = problem(50);
    let (a, ua) = run(&p, 1, 0.05, 9);
    let (b, ub) = run(&p, 1, 0.05, 9);
    assert_eq!(a, b);
    assert_eq!(ua, ub);
    let o1 = deployment_order(&p, Scenario::Standard, 9);
    let o2 = deployment_order(&p, Scenario::Standard, 10);
    assert_ne!(o1, o2, "different seeds shuffle differently");
}

#[test]
fn task_shift_serves_tasks_one_after_another() {
    let p = problem(50);
    let order = deployment_order(&p, Scenario::TaskShift, 4);
    let tasks: Vec<usize> = order.iter().map(|&i| p.deployment().task[i]).collect();
    let switches = tasks.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(switches, 1);
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
}

#[test]
fn mismatched_shapes_are_errors_not_panics() {
    let p = problem(10);
    let cm = costs(&p);
    let order: Vec<usize> = (0..10).collect();
    let wrong = ContextTable::from_rows("wrong", 3, vec![0.0; 30]).unwrap();
    let mut policy = Spy {
        table: p.clone(),
        updates: Rc::default(),
        pick: 0,
    };
    let mut cp = Reckless {
        state: BudgetState::default(),
    };
    let ep = Episode {
        problem: &p,
        contexts: &wrong,
        costs: &cm,
        order: &order,
        budget: 1.0,
        seed: 0,
        log: false,
        exploration: pilot_router::Exploration::Argmax,
    };
    let err = run_episode(&ep, &mut policy, &mut cp)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2-dimensional") && err.contains("dimension 3"),
        "{err}"
    );
    let ctx = contexts(&p);
    let bad_order = [0usize, 11];
    let ep = Episode {
        contexts: &ctx,
        order: &bad_order,
        ..ep
    };
    assert!(run_episode(&ep, &mut policy, &mut cp).is_err());
    let ep = Episode {
        order: &order,
        budget: f64::NAN,
        ..ep
    };
    assert!(run_episode(&ep, &mut policy, &mut cp).is_err());
}

#[test]
fn problem_rejects_bad_cells_with_names() {
    let mut d = Queries::default();
    d.push("q7".into(), 0, &[0.0], &[0.5, f32::NAN], &[0.1, 0.1]);
    let err = Problem::new(
        vec!["a".into(), "b".into()],
        vec!["t".into()],
        1,
        Queries::default(),
        d,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("q7") && err.contains("LLM b"), "{err}");
    let mut d = Queries::default();
    d.push("q8".into(), 0, &[0.0], &[0.5, 0.5], &[0.1, f64::NAN]);
    let err = Problem::new(
        vec!["a".into(), "b".into()],
        vec!["t".into()],
        1,
        Queries::default(),
        d,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("q8") && err.contains("cost NaN"), "{err}");
}

/// Brute force over every assignment (tiny instances only).
struct Brute;

impl MckpSolver for Brute {
    fn solve(
        &mut self,
        inst: &MckpInstance<'_>,
        choice: &mut [usize],
    ) -> pilot_core::Result<MckpSolution> {
        let m = inst.class_count();
        let mut cur = vec![0usize; m];
        let mut best: Option<(f64, u64, Vec<usize>)> = None;
        loop {
            let (v, w) = inst.evaluate(&cur)?;
            if w <= inst.capacity() && best.as_ref().is_none_or(|b| v > b.0) {
                best = Some((v, w, cur.clone()));
            }
            let mut c = 0;
            loop {
                if c == m {
                    let (value, weight, ch) = best.ok_or(pilot_core::ErrorKind::Infeasible)?;
                    choice.copy_from_slice(&ch);
                    return Ok(MckpSolution {
                        value,
                        weight,
                        bound: None,
                    });
                }
                cur[c] += 1;
                if cur[c] < inst.class_range(c).len() {
                    break;
                }
                cur[c] = 0;
                c += 1;
            }
        }
    }
}

#[test]
fn offline_optimum_matches_brute_force_over_arms() {
    let p = problem(7);
    let k = K;
    let d = p.deployment();
    for budget in [0.004, 0.01, 0.03, 0.2] {
        let (q, c) = pilot_sim::offline::offline_optimum(&p, budget, &mut Brute).unwrap();
        assert!(c <= budget);
        // Brute force on the real (unscaled) costs.
        let mut best = 0.0f64;
        for code in 0..k.pow(7) {
            let (mut qq, mut cc, mut x) = (0.0, 0.0, code);
            for i in 0..7 {
                let a = x % k;
                x /= k;
                qq += f64::from(d.quality[i * k + a]);
                cc += d.cost[i * k + a];
            }
            if cc <= budget {
                best = best.max(qq);
            }
        }
        // Rounding costs up to 1/100 000 of the budget can only lose value.
        assert!(
            q <= best + 1e-9 && q >= best - 0.5 - 1e-9,
            "budget {budget}: {q} vs {best}"
        );
    }
}

#[test]
fn parallel_grid_equals_sequential_grid() {
    let p = problem(40);
    let ctx = vec![contexts(&p)];
    let cm = costs(&p);
    let policies: Vec<PolicySpec> = (0..K)
        .map(|pick| PolicySpec {
            name: format!("pick{pick}"),
            context: 0,
            make: Box::new(move |_, _| {
                Ok(Box::new(Spy {
                    table: problem(1),
                    updates: Rc::default(),
                    pick,
                }) as Box<dyn pilot_router::RoutingPolicy>)
            }),
            starts: None,
        })
        .collect();
    let cost_policies = vec![CostPolicySpec {
        name: "reckless".into(),
        make: Box::new(|_, budget, _| {
            Ok(Box::new(Reckless {
                state: BudgetState { budget, spent: 0.0 },
            }) as Box<dyn CostPolicy<f64>>)
        }),
    }];
    let mut grid = Grid {
        problem: &p,
        contexts: &ctx,
        costs: &cm,
        policies: &policies,
        cost_policies: &cost_policies,
        budget_fracs: &[0.1, 0.5, 1.0],
        reference_arm: 0,
        seeds: 3,
        scenarios: &[Scenario::Standard, Scenario::TaskShift],
        threads: 1,
    };
    let seq = grid.run(&|_, _| {}).unwrap();
    grid.threads = 2;
    let par = grid.run(&|_, _| {}).unwrap();
    assert_eq!(seq.len(), 2 * 3 * 3 * 3);
    for (a, b) in seq.iter().zip(&par) {
        assert_eq!(a.outcome, b.outcome);
        assert!(a.outcome.budget_held);
    }
    let (rows, curves) = pilot_sim::summary::aggregate(&grid, &seq).unwrap();
    assert_eq!(rows.len(), 2 * 3 * 3);
    assert_eq!(curves.len(), rows.len());
    // Always the reference arm at budget 1 costs exactly the reference cost.
    let full = rows
        .iter()
        .find(|r| r.policy == "pick0" && r.budget_frac == Some(1.0) && r.scenario == "standard")
        .unwrap();
    assert!(full.cost_pct_of_best <= 100.0 + 1e-9);
    assert!(full.budget_held == Some(true));
}

#[test]
fn an_isolated_failing_policy_stops_only_itself() {
    let p = problem(40);
    let ctx = vec![contexts(&p)];
    let cm = costs(&p);
    let mut policies: Vec<PolicySpec> = (0..2)
        .map(|pick| PolicySpec {
            name: format!("pick{pick}"),
            context: 0,
            make: Box::new(move |_, _| {
                Ok(Box::new(Spy {
                    table: problem(1),
                    updates: Rc::default(),
                    pick,
                }) as Box<dyn pilot_router::RoutingPolicy>)
            }),
            starts: None,
        })
        .collect();
    // Fails from its second seed on, like a plugin that breaks mid-run.
    policies.insert(
        1,
        PolicySpec {
            name: "broken".into(),
            context: 0,
            make: Box::new(|seed, _| {
                if seed >= 1 {
                    return Err(pilot_sim::SimError::invalid("broken on purpose"));
                }
                Ok(Box::new(Spy {
                    table: problem(1),
                    updates: Rc::default(),
                    pick: 0,
                }) as Box<dyn pilot_router::RoutingPolicy>)
            }),
            starts: None,
        },
    );
    let cost_policies = vec![CostPolicySpec {
        name: "reckless".into(),
        make: Box::new(|_, budget, _| {
            Ok(Box::new(Reckless {
                state: BudgetState { budget, spent: 0.0 },
            }) as Box<dyn CostPolicy<f64>>)
        }),
    }];
    let mut grid = Grid {
        problem: &p,
        contexts: &ctx,
        costs: &cm,
        policies: &policies,
        cost_policies: &cost_policies,
        budget_fracs: &[0.5, 1.0],
        reference_arm: 0,
        seeds: 3,
        scenarios: &[Scenario::Standard],
        threads: 1,
    };
    // Not isolated: the first error ends the run, as before.
    let err = grid.run(&|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("broken on purpose"), "{err}");
    for threads in [1, 2] {
        grid.threads = threads;
        let (cells, failures) = grid.run_isolating(&[1], &|_, _| {}).unwrap();
        // Every cell of the two healthy policies, none of the broken one's.
        assert_eq!(cells.len(), 2 * 2 * 3, "{threads} threads");
        assert!(cells.iter().all(|c| c.policy != 1));
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, 1);
        let text = failures[0].1.to_string();
        assert!(
            text.contains("broken / reckless") && text.contains("broken on purpose"),
            "{text}"
        );
    }
}
