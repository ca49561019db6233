//! Writes the report: `summary.csv`, `regret.csv`, `frontier.csv` and a plain-text table.

use std::fmt::Write as _;
use std::path::Path;

use crate::summary::{RegretCurve, SummaryRow};
use crate::{Result, SimError};

/// The columns of `summary.csv`, in order.
pub const SUMMARY_COLUMNS: &str = "scenario,policy,cost_policy,budget_frac,seeds,quality_mean,\
quality_std,quality_pct_of_best,cost_pct_of_best,regret_final,regret_100,regret_300,\
unserved_mean,overridden_mean,budget_held";

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
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
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
