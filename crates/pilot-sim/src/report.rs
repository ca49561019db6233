//! Writes the report: `summary.csv`, `regret.csv`, `frontier.csv` and a plain-text table.

use std::fmt::Write as _;
use std::path::Path;

use crate::summary::{RegretCurve, SummaryRow};
use crate::{Result, SimError};

/// The columns of `summary.csv`, in order.
pub const SUMMARY_COLUMNS: &str = "scenario,policy,cost_policy,budget_frac,seeds,quality_mean,\
quality_std,quality_pct_of_best,cost_pct_of_best,regret_final,regret_100,regret_300,\
unserved_mean,overridden_mean,budget_held,change_step,quality_before_pct,quality_after_pct,\
delta_after,adoption_steps,settle_steps";

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// Quotes a CSV field when it holds a separator or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The text of `summary.csv`.
pub fn summary_csv(rows: &[SummaryRow]) -> String {
    let mut s = String::from(SUMMARY_COLUMNS);
    s.push('\n');
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            field(&r.scenario),
            field(&r.policy),
            field(&r.cost_policy),
            opt(r.budget_frac),
            r.seeds,
            num(r.quality_mean),
            num(r.quality_std),
            num(r.quality_pct_of_best),
            num(r.cost_pct_of_best),
            num(r.regret_final),
            opt(r.regret_100),
            opt(r.regret_300),
            num(r.unserved_mean),
            num(r.overridden_mean),
            r.budget_held.map_or(String::new(), |b| b.to_string()),
            r.world.as_ref().map_or_else(
                || ",,,,,".to_owned(),
                |w| format!(
                    "{},{},{},{},{},{}",
                    w.change_step,
                    num(w.quality_before_pct),
                    num(w.quality_after_pct),
                    num(w.delta_after),
                    opt(w.adoption_steps),
                    opt(w.settle_steps)
                )
            ),
        );
    }
    s
}

/// The text of `regret.csv`: mean cumulative regret at `t = stride, 2·stride, …` plus the
/// points t = 100, t = 300 and the last step, per curve (long format).
pub fn regret_csv(curves: &[RegretCurve], stride: usize) -> String {
    let mut s = String::from("scenario,policy,cost_policy,budget_frac,t,regret_mean\n");
    let stride = stride.max(1);
    for c in curves {
        for (i, r) in c.mean.iter().enumerate() {
            let t = i + 1;
            if t % stride == 0 || t == 100 || t == 300 || t == c.mean.len() {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{t},{r}",
                    field(&c.scenario),
                    field(&c.policy),
                    field(&c.cost_policy),
                    c.budget_frac
                );
            }
        }
    }
    s
}

/// The text of `frontier.csv` (area under the quality-versus-budget curve).
pub fn frontier_csv(auc: &[(String, String, String, f64)]) -> String {
    let mut s = String::from("scenario,policy,cost_policy,quality_auc\n");
    for (sc, p, c, a) in auc {
        let _ = writeln!(s, "{},{},{},{a}", field(sc), field(p), field(c));
    }
    s
}

/// Writes `text` to `path`.
///
/// # Errors
/// [`SimError::Io`] naming the file.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| SimError::Io {
        path: path.to_owned(),
        source,
    })
}

/// A fixed-width table of the summary rows for the terminal.
pub fn table(rows: &[SummaryRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.policy.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let cwidth = rows
        .iter()
        .map(|r| r.cost_policy.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<10} {:<width$} {:<cwidth$} {:>6} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>5}",
        "scenario",
        "policy",
        "cost",
        "budget",
        "quality",
        "±std",
        "%best",
        "cost%",
        "regret",
        "r@100",
        "unserved",
        "held"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<10} {:<width$} {:<cwidth$} {:>6} {:>8.4} {:>7.4} {:>7.1} {:>8.1} {:>8} {:>8} {:>8.1} {:>5}",
            r.scenario,
            r.policy,
            r.cost_policy,
            r.budget_frac
                .map_or("-".to_owned(), |b| format!("{:.0}%", b * 100.0)),
            r.quality_mean,
            r.quality_std,
            r.quality_pct_of_best,
            r.cost_pct_of_best,
            if r.regret_final.is_finite() {
                format!("{:.1}", r.regret_final)
            } else {
                "-".to_owned()
            },
            r.regret_100.map_or("-".to_owned(), |v| format!("{v:.1}")),
            r.unserved_mean,
            r.budget_held.map_or("-", |b| if b { "yes" } else { "NO" }),
        );
    }
    if rows
        .iter()
        .any(|r| r.regret_100.is_none() && r.regret_final.is_finite())
    {
        let _ = writeln!(
            s,
            "r@100 is the cumulative regret after 100 queries; '-' where the stream is shorter \
             (the regret column is then the whole stream's)"
        );
    }
    if let Some(seeds) = rows
        .iter()
        .filter(|r| r.budget_frac.is_some())
        .map(|r| r.seeds)
        .max()
        && seeds < 5
    {
        let _ = writeln!(
            s,
            "±std is over {seeds} seed(s): with so few it says little about the spread"
        );
    }
    s
}

/// A policy that stopped mid-run (a plugin that failed, say): its name, why, and the cells —
/// (scenario, cost policy, budget fraction) — it would have had rows for.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedPolicy {
    /// Its name in the report.
    pub policy: String,
    /// Why it stopped.
    pub reason: String,
    /// `(scenario, cost policy, budget fraction)` of each row it would have had.
    pub cells: Vec<(String, String, f64)>,
}

/// [`summary_csv`] with one more column at the end, `error`: empty on every row that ran; one
/// row per cell of each failed policy, with its scenario, policy, cost policy and budget,
/// `seeds` 0, every figure empty, and `error` the reason (control characters made spaces, so
/// the row stays one line; quoted as CSV).
pub fn summary_csv_with_failures(rows: &[SummaryRow], failed: &[FailedPolicy]) -> String {
    let mut s = String::from(SUMMARY_COLUMNS);
    s.push_str(",error\n");
    for r in rows {
        // Each row as `summary_csv` writes it (after its header line), then an empty error.
        let one = summary_csv(std::slice::from_ref(r));
        let row = one
            .split_once('\n')
            .map_or("", |(_, row)| row)
            .trim_end_matches('\n');
        let _ = writeln!(s, "{row},");
    }
    let columns: Vec<&str> = SUMMARY_COLUMNS.split(',').collect();
    for f in failed {
        let reason: String = f
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        for (scenario, cost_policy, budget) in &f.cells {
            let mut fields: Vec<String> = columns
                .iter()
                .map(|c| match *c {
                    "scenario" => field(scenario),
                    "policy" => field(&f.policy),
                    "cost_policy" => field(cost_policy),
                    "budget_frac" => format!("{budget}"),
                    "seeds" => "0".to_owned(),
                    _ => String::new(),
                })
                .collect();
            fields.push(field(&reason));
            let _ = writeln!(s, "{}", fields.join(","));
        }
    }
    s
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn failed_policies_get_marked_rows_and_the_others_an_empty_error() {
        let row = SummaryRow {
            scenario: "standard".into(),
            policy: "pilot".into(),
            cost_policy: "pacing".into(),
            budget_frac: Some(0.25),
            seeds: 2,
            quality_mean: 0.5,
            quality_std: 0.1,
            quality_pct_of_best: 90.0,
            cost_pct_of_best: 20.0,
            regret_final: 3.0,
            regret_100: None,
            regret_300: None,
            unserved_mean: 0.0,
            overridden_mean: 1.0,
            budget_held: Some(true),
            world: None,
        };
        let failed = FailedPolicy {
            policy: "plugin[bad]".into(),
            reason: "trapped, twice:\n\u{1b}[8mhidden".into(),
            cells: vec![
                ("standard".into(), "pacing".into(), 0.25),
                ("standard".into(), "pacing".into(), 1.0),
            ],
        };
        let csv = summary_csv_with_failures(std::slice::from_ref(&row), &[failed]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        let width = SUMMARY_COLUMNS.split(',').count() + 1;
        assert!(lines[0].ends_with(",error"), "{csv}");
        let ran = summary_csv(std::slice::from_ref(&row));
        assert_eq!(lines[1], format!("{},", ran.lines().nth(1).unwrap_or("")));
        assert_eq!(lines[1].split(',').count(), width);
        assert!(
            lines[2].starts_with("standard,plugin[bad],pacing,0.25,0,,"),
            "{csv}"
        );
        assert!(
            lines[2].ends_with(",\"trapped, twice:  [8mhidden\""),
            "{csv}"
        );
        assert!(
            lines[3].starts_with("standard,plugin[bad],pacing,1,0,"),
            "{csv}"
        );
        // Up to the quoted reason, a failed row has the header's columns.
        let before = lines[3].split(",\"").next().unwrap_or("");
        assert_eq!(before.split(',').count(), width - 1, "{csv}");
    }
}
