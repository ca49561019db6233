//! What a `pilot simulate` run must show, checked after it ran, and the flag that pairs PILOT
//! with its prior alone under one cost policy's settings.
//!
//! The checks: every budgeted cell held its budget (real costs, every seed), and at every
//! (scenario, cost policy, budget) every PILOT (`pilot`, `pilot[…]`) has a higher mean quality
//! than random routing and than LinUCB. They run by default on the synthetic scenario (no
//! `--dataset`: the README's main job, which CI runs), so a broken policy fails CI instead of
//! printing a worse table; `--check` asks for them on a dataset too, `--no-check` turns them
//! off. A comparison whose rows the run lacks (no PILOT with `--no-prior`, say) is a failure
//! under `--check` and a printed note otherwise. The checks run last, after the report is
//! printed and its files written, so a failed run still leaves everything to look at.

use anyhow::bail;
use pilot_sim::experiment::CostPolicyKind;
use pilot_sim::hyper::Family;
use pilot_sim::summary::SummaryRow;

/// The policies every PILOT must beat at every budget.
const BEATEN: [&str; 2] = ["random", "linucb"];

/// Flags of `pilot simulate` about what the run shows.
#[derive(clap::Args, Debug, Default)]
pub struct Evidence {
    /// Check what the run exists to show and exit non-zero if it does not: every budget held,
    /// and every PILOT's mean quality above random routing's and LinUCB's at each budget
    /// [default: on for the synthetic scenario, off with --dataset].
    #[arg(long, conflicts_with = "no_check")]
    check: bool,
    /// Skip those checks on the synthetic scenario.
    #[arg(long)]
    no_check: bool,
    /// Run PILOT and the prior alone (on the same prior) with the cost-policy settings of one
    /// side of the pair, so they differ only in online learning [default: each its own tuned
    /// settings].
    #[arg(long, value_name = "SIDE", value_parser = ["pilot", "prior-only"])]
    pair_cost_settings: Option<String>,
}

impl Evidence {
    /// The side of the pair whose cost-policy settings `--pair-cost-settings` asks for
    /// (`None`: each its own), for the simulation plan.
    pub fn paired(&self) -> Option<Family> {
        match self.pair_cost_settings.as_deref() {
            Some("pilot") => Some(Family::Pilot),
            Some("prior-only") => Some(Family::PriorOnly),
            _ => None,
        }
    }

    /// Runs the checks when they apply (see the module docs), prints what passed, and fails
    /// with every broken expectation listed.
    ///
    /// # Errors
    /// When a check fails.
    pub fn enforce(&self, synthetic: bool, rows: &[SummaryRow]) -> anyhow::Result<()> {
        if self.no_check || !(self.check || synthetic) {
            return Ok(());
        }
        let verdict = check(rows, self.check);
        for line in &verdict.passed {
            println!("check: {line}");
        }
        for line in &verdict.notes {
            println!("check: not checked: {line}");
        }
        if verdict.failed.is_empty() {
            return Ok(());
        }
        bail!(
            "the run does not show what it should:\n  - {}\n(--no-check skips these checks)",
            verdict.failed.join("\n  - ")
        )
    }
}

/// What [`check`] found.
#[derive(Debug, Default, PartialEq)]
pub struct Verdict {
    /// Expectations met, one line each.
    pub passed: Vec<String>,
    /// Expectations broken, one line each.
    pub failed: Vec<String>,
    /// Comparisons that could not be made (missing rows) when not `strict`.
    pub notes: Vec<String>,
}

fn is_pilot(policy: &str) -> bool {
    policy == Family::Pilot.name() || policy.starts_with("pilot[")
}

fn cell(r: &SummaryRow) -> String {
    format!(
        "{} / {} / budget {} %",
        r.scenario,
        r.cost_policy,
        r.budget_frac.map_or(0.0, |b| 100.0 * b)
    )
}

/// Checks the budgeted summary rows of a run: every budget held, every PILOT above
/// [`BEATEN`] in mean quality at each (scenario, cost policy, budget). With `strict`, a
/// comparison whose rows are missing is a failure; otherwise a note.
pub fn check(rows: &[SummaryRow], strict: bool) -> Verdict {
    let mut v = Verdict::default();
    let budgeted: Vec<&SummaryRow> = rows.iter().filter(|r| r.budget_frac.is_some()).collect();
    if budgeted.is_empty() {
        v.failed
            .push("no budgeted rows: nothing was checked".into());
        return v;
    }
    let over: Vec<String> = budgeted
        .iter()
        .filter(|r| r.budget_held != Some(true))
        .map(|r| format!("{} at {}: spent over its budget", r.policy, cell(r)))
        .collect();
    if over.is_empty() {
        v.passed
            .push(format!("every budget held ({} cells)", budgeted.len()));
    } else {
        v.failed.extend(over);
    }
    let mut missing = Vec::new();
    let mut compared = 0usize;
    // The smallest margin (points of mean quality) and where it was.
    let mut closest: Option<(f64, String)> = None;
    // The cells of the grid: budgeted rows of an online cost policy (not the offline knapsack).
    let mut cells: Vec<&SummaryRow> = Vec::new();
    for r in &budgeted {
        if CostPolicyKind::parse(&r.cost_policy).is_some() && !cells.iter().any(|c| same_cell(c, r))
        {
            cells.push(r);
        }
    }
    for key in cells {
        let here: Vec<&&SummaryRow> = budgeted.iter().filter(|r| same_cell(r, key)).collect();
        let pilots: Vec<&&&SummaryRow> = here.iter().filter(|r| is_pilot(&r.policy)).collect();
        if pilots.is_empty() {
            missing.push(format!("no PILOT row at {}", cell(key)));
        }
        for name in BEATEN {
            let Some(base) = here.iter().find(|r| r.policy == name) else {
                missing.push(format!("no {name} row at {}", cell(key)));
                continue;
            };
            for p in &pilots {
                compared += 1;
                let margin = p.quality_mean - base.quality_mean;
                let at = format!(
                    "{} {:.4} vs {name} {:.4} at {} ({} seeds, std {:.4} / {:.4})",
                    p.policy,
                    p.quality_mean,
                    base.quality_mean,
                    cell(key),
                    p.seeds,
                    p.quality_std,
                    base.quality_std
                );
                if margin > 0.0 {
                    if closest.as_ref().is_none_or(|(m, _)| margin < *m) {
                        closest = Some((margin, at));
                    }
                } else {
                    v.failed.push(format!("PILOT not above {name}: {at}"));
                }
            }
        }
    }
    if strict {
        v.failed.extend(missing);
    } else {
        v.notes.extend(missing);
    }
    if let Some((_, at)) = closest
        && !v.failed.iter().any(|f| f.starts_with("PILOT not above"))
    {
        v.passed.push(format!(
            "every PILOT above {} at every budget ({compared} comparisons; closest: {at})",
            BEATEN.join(" and ")
        ));
    }
    v
}

fn same_cell(a: &SummaryRow, b: &SummaryRow) -> bool {
    a.scenario == b.scenario && a.cost_policy == b.cost_policy && a.budget_frac == b.budget_frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(policy: &str, budget: f64, quality: f64, held: bool) -> SummaryRow {
        SummaryRow {
            scenario: "standard".into(),
            policy: policy.into(),
            cost_policy: "pacing".into(),
            budget_frac: Some(budget),
            seeds: 5,
            quality_mean: quality,
            quality_std: 0.01,
            quality_pct_of_best: 100.0 * quality,
            cost_pct_of_best: 100.0 * budget,
            regret_final: 0.0,
            regret_100: None,
            regret_300: None,
            unserved_mean: 0.0,
            overridden_mean: 0.0,
            budget_held: Some(held),
            world: None,
        }
    }

    fn healthy() -> Vec<SummaryRow> {
        let mut rows = Vec::new();
        for b in [0.1, 0.5] {
            rows.push(row("pilot", b, 0.8, true));
            rows.push(row("pilot[arena]", b, 0.75, true));
            rows.push(row("prior-only", b, 0.79, true));
            rows.push(row("linucb", b, 0.7, true));
            rows.push(row("random", b, 0.6, true));
        }
        // References are not cells: unbudgeted, or the offline knapsack.
        rows.push(SummaryRow {
            budget_frac: None,
            budget_held: None,
            ..row("oracle", 1.0, 1.0, true)
        });
        rows.push(SummaryRow {
            cost_policy: "offline".into(),
            ..row("offline-mckp", 0.1, 1.0, true)
        });
        rows
    }

    #[test]
    fn a_healthy_run_passes_and_names_its_closest_margin() {
        let v = check(&healthy(), true);
        assert!(v.failed.is_empty(), "{v:?}");
        assert!(
            v.passed[0].contains("every budget held (11 cells)"),
            "{v:?}"
        );
        assert!(v.passed[1].contains("8 comparisons"), "{v:?}");
        assert!(
            v.passed[1].contains("pilot[arena] 0.7500 vs linucb 0.7000"),
            "{v:?}"
        );
    }

    #[test]
    fn a_broken_policy_or_an_overspent_budget_fails() {
        let mut rows = healthy();
        // PILOT falls below LinUCB at one budget, and random overspends at another.
        rows[5].quality_mean = 0.69;
        rows[4].budget_held = Some(false);
        let v = check(&rows, false);
        assert_eq!(v.failed.len(), 2, "{v:?}");
        assert!(
            v.failed[0].contains("random at standard / pacing / budget 10 %: spent over"),
            "{v:?}"
        );
        assert!(
            v.failed[1].starts_with("PILOT not above linucb: pilot 0.6900 vs linucb 0.7000"),
            "{v:?}"
        );
        assert_eq!(v.passed.len(), 0, "{v:?}");
        let e = Evidence::default().enforce(true, &rows).unwrap_err();
        assert!(
            e.to_string().contains("does not show what it should"),
            "{e}"
        );
        // Equal is not above.
        let mut tie = healthy();
        tie[0].quality_mean = 0.7;
        assert_eq!(check(&tie, false).failed.len(), 1);
    }

    #[test]
    fn missing_rows_fail_only_when_the_check_was_asked_for() {
        let rows: Vec<SummaryRow> = healthy()
            .into_iter()
            .filter(|r| !is_pilot(&r.policy))
            .collect();
        let lenient = check(&rows, false);
        assert!(lenient.failed.is_empty(), "{lenient:?}");
        assert_eq!(lenient.notes.len(), 2, "{lenient:?}");
        assert!(
            lenient.notes.iter().all(|n| n.contains("pacing")),
            "{lenient:?}"
        );
        let strict = check(&rows, true);
        assert_eq!(strict.failed.len(), 2, "{strict:?}");
        assert!(strict.failed[0].contains("no PILOT row"), "{strict:?}");
        assert_eq!(check(&[], false).failed.len(), 1);
    }

    #[test]
    fn the_checks_run_where_they_apply() {
        let mut rows = healthy();
        rows[0].budget_held = Some(false);
        // Synthetic: on by default, off with --no-check; a dataset run only with --check.
        assert!(Evidence::default().enforce(true, &rows).is_err());
        assert!(Evidence::default().enforce(false, &rows).is_ok());
        let off = Evidence {
            no_check: true,
            ..Evidence::default()
        };
        assert!(off.enforce(true, &rows).is_ok());
        let asked = Evidence {
            check: true,
            ..Evidence::default()
        };
        assert!(asked.enforce(false, &rows).is_err());
    }

    #[test]
    fn pairing_names_the_side() {
        assert_eq!(Evidence::default().paired(), None);
        let e = Evidence {
            pair_cost_settings: Some("prior-only".into()),
            ..Evidence::default()
        };
        assert_eq!(e.paired(), Some(Family::PriorOnly));
    }
}
