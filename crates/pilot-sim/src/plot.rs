//! SVG plots (plotters): the cost–quality frontier and the regret curves, one panel per scenario
//! and cost policy that was run.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::summary::{RegretCurve, SummaryRow};
use crate::{Result, SimError};

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Size of one panel in pixels.
const PANEL: (u32, u32) = (900, 600);

/// The policy name of the per-query oracle's reference row.
const ORACLE: &str = "oracle";
/// The prefix of the single-LLM reference rows.
const SINGLE: &str = "single:";
/// The cost policy of the offline-optimum rows (the knapsack over the whole stream).
const OFFLINE: &str = "offline";

fn plot_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// The distinct (scenario, cost policy) pairs of `items`, in order of first appearance.
fn panels<'a>(items: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (s, c) in items {
        if !out.iter().any(|(a, b)| a == s && b == c) {
            out.push((s.to_owned(), c.to_owned()));
        }
    }
    out
}

/// A whole SVG or one panel of it.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One policy's points: (cost %, quality %, ±std %).
type Series = (String, Vec<(f64, f64, f64)>);

/// Splits the drawing area into one cell per panel, two columns at most.
fn grid(path: &Path, count: usize) -> Result<(Area<'_>, Vec<Area<'_>>)> {
    let count = count.max(1);
    let cols = count.min(2);
    let rows = count.div_ceil(cols);
    let root =
        SVGBackend::new(path, (PANEL.0 * cols as u32, PANEL.1 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let cells = root.split_evenly((rows, cols));
    Ok((root, cells))
}

/// A short label for a reference row: the LLM's name without `single:` and any `org/`.
fn reference_label(policy: &str) -> String {
    let name = policy.strip_prefix(SINGLE).unwrap_or(policy);
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

/// The ±std of a row's mean quality, in the plot's unit (% of the reference LLM's quality).
fn std_pct(r: &SummaryRow) -> f64 {
    if r.quality_mean > 0.0 && r.quality_std.is_finite() {
        r.quality_std * r.quality_pct_of_best / r.quality_mean
    } else {
        0.0
    }
}

fn finite(p: (f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// Quality (% of the reference LLM) against cost (% of the reference LLM): one panel per
/// (scenario, cost policy) that was run, one line per policy over the budgets with a ±std bar
/// (over seeds, as `summary.csv`'s `quality_std`) at each point, the offline optimum as a
/// dashed line, and the unbudgeted references as labelled markers (× per single LLM, ★ for the
/// per-query oracle).
///
/// # Errors
/// [`SimError::Plot`] when the SVG cannot be drawn or written.
pub fn frontier_svg(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let online = |r: &&SummaryRow| r.budget_frac.is_some() && r.cost_policy != OFFLINE;
    let list = panels(
        rows.iter()
            .filter(online)
            .map(|r| (r.scenario.as_str(), r.cost_policy.as_str())),
    );
    let refs: Vec<&SummaryRow> = rows.iter().filter(|r| r.budget_frac.is_none()).collect();
    let mut offline: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.budget_frac.is_some() && r.cost_policy == OFFLINE)
        .map(|r| (r.cost_pct_of_best, r.quality_pct_of_best))
        .filter(|&p| finite(p))
        .collect();
    offline.sort_by(|a, b| a.0.total_cmp(&b.0));
    // One scale for every panel, so they compare at a glance.
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for r in rows {
        let p = (r.cost_pct_of_best, r.quality_pct_of_best);
        if finite(p) {
            let s = std_pct(r);
            x_max = x_max.max(p.0);
            y_min = y_min.min(p.1 - s);
            y_max = y_max.max(p.1 + s);
        }
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 100.0);
    }
    let (root, cells) = grid(path, list.len())?;
    for ((scenario, cost_policy), cell) in list.iter().zip(&cells) {
        let mut series: Vec<Series> = Vec::new();
        for r in rows
            .iter()
            .filter(online)
            .filter(|r| &r.scenario == scenario && &r.cost_policy == cost_policy)
        {
            let point = (r.cost_pct_of_best, r.quality_pct_of_best, std_pct(r));
            match series.iter_mut().find(|(n, _)| *n == r.policy) {
                Some((_, pts)) => pts.push(point),
                None => series.push((r.policy.clone(), vec![point])),
            }
        }
        for (_, pts) in &mut series {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut chart = ChartBuilder::on(cell)
            .caption(
                format!("Cost–quality frontier ({scenario}, {cost_policy})"),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..x_max * 1.08, (y_min - 2.0)..(y_max + 2.0))
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("cost, % of the reference LLM")
            .y_desc("quality, % of the reference LLM (bars: ±std over seeds)")
            .draw()
            .map_err(|e| plot_err(path, e))?;
        for (i, (name, pts)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64, f64)> =
                pts.iter().copied().filter(|p| finite((p.0, p.1))).collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))
                .map_err(|e| plot_err(path, e))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                )
                .map_err(|e| plot_err(path, e))?;
            let cap = x_max * 0.006;
            chart
                .draw_series(pts.iter().filter(|p| p.2 > 0.0).flat_map(|p| {
                    let (x, lo, hi) = (p.0, p.1 - p.2, p.1 + p.2);
                    [
                        PathElement::new(vec![(x, lo), (x, hi)], color.stroke_width(1)),
                        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], color.stroke_width(1)),
                        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], color.stroke_width(1)),
                    ]
                }))
                .map_err(|e| plot_err(path, e))?;
        }
        if !offline.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(
                    offline.iter().copied(),
                    6,
                    4,
                    BLACK.stroke_width(1),
                ))
                .map_err(|e| plot_err(path, e))?
                .label("offline optimum (knapsack, hindsight)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        }
        let singles: Vec<(f64, f64, String)> = refs
            .iter()
            .filter(|r| r.policy.starts_with(SINGLE))
            .map(|r| {
                (
                    r.cost_pct_of_best,
                    r.quality_pct_of_best,
                    reference_label(&r.policy),
                )
            })
            .filter(|p| finite((p.0, p.1)))
            .collect();
        if !singles.is_empty() {
            chart
                .draw_series(
                    singles
                        .iter()
                        .map(|p| Cross::new((p.0, p.1), 4, BLACK.stroke_width(1))),
                )
                .map_err(|e| plot_err(path, e))?
                .label("single LLM, always on (×, labelled)")
                .legend(|(x, y)| Cross::new((x + 8, y), 4, BLACK));
            chart
                .draw_series(singles.iter().map(|p| {
                    Text::new(
                        p.2.clone(),
                        (p.0, p.1),
                        ("sans-serif", 11).into_font().color(&BLACK),
                    )
                }))
                .map_err(|e| plot_err(path, e))?;
        }
        let oracles: Vec<(f64, f64)> = refs
            .iter()
            .filter(|r| r.policy == ORACLE)
            .map(|r| (r.cost_pct_of_best, r.quality_pct_of_best))
            .filter(|&p| finite(p))
            .collect();
        if !oracles.is_empty() {
            let red = RGBColor(200, 0, 0);
            chart
                .draw_series(
                    oracles
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 7, red.filled())),
                )
                .map_err(|e| plot_err(path, e))?
                .label("per-query oracle (▲, hindsight)")
                .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, red.filled()));
            chart
                .draw_series(oracles.iter().map(|&p| {
                    Text::new(
                        "oracle".to_owned(),
                        p,
                        ("sans-serif", 12).into_font().color(&red),
                    )
                }))
                .map_err(|e| plot_err(path, e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| plot_err(path, e))?;
    }
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// Mean cumulative regret against the per-query oracle over the stream, one line per policy:
/// one panel per (scenario, cost policy) that was run, at the budget fraction `budget_frac`.
///
/// # Errors
/// [`SimError::Plot`] when the SVG cannot be drawn or written.
pub fn regret_svg(path: &Path, curves: &[RegretCurve], budget_frac: f64) -> Result<()> {
    let at_budget = |c: &&RegretCurve| (c.budget_frac - budget_frac).abs() < 1e-12;
    let list = panels(
        curves
            .iter()
            .filter(at_budget)
            .map(|c| (c.scenario.as_str(), c.cost_policy.as_str())),
    );
    let chosen: Vec<&RegretCurve> = curves.iter().filter(at_budget).collect();
    let t_max = chosen
        .iter()
        .map(|c| c.mean.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let y_max = chosen
        .iter()
        .flat_map(|c| c.mean.iter().copied())
        .fold(1.0f64, f64::max);
    let (root, cells) = grid(path, list.len())?;
    for ((scenario, cost_policy), cell) in list.iter().zip(&cells) {
        let mut chart = ChartBuilder::on(cell)
            .caption(
                format!(
                    "Cumulative regret vs the per-query oracle ({scenario}, {cost_policy}, \
                     budget {:.0}%)",
                    budget_frac * 100.0
                ),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0usize..t_max, 0.0..y_max * 1.05)
            .map_err(|e| plot_err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("queries")
            .y_desc("cumulative regret (mean over seeds)")
            .draw()
            .map_err(|e| plot_err(path, e))?;
        let here: Vec<&&RegretCurve> = chosen
            .iter()
            .filter(|c| &c.scenario == scenario && &c.cost_policy == cost_policy)
            .collect();
        // A world scenario's change: a dashed vertical line where the world changed, so the
        // curves' bend (or its absence) after it reads at a glance.
        if let Some(step) = here.iter().find_map(|c| c.change_step) {
            let top = y_max * 1.05;
            let dashes = (0..40).map(|i| {
                let (a, b) = (f64::from(i) / 40.0, (f64::from(i) + 0.5) / 40.0);
                PathElement::new(
                    vec![(step, a * top), (step, b * top)],
                    BLACK.stroke_width(2),
                )
            });
            chart
                .draw_series(dashes)
                .map_err(|e| plot_err(path, e))?
                .label(format!("change at query {step}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK));
        }
        for (i, c) in here.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    c.mean.iter().enumerate().map(|(t, &r)| (t + 1, r)),
                    color.stroke_width(2),
                ))
                .map_err(|e| plot_err(path, e))?
                .label(c.policy.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| plot_err(path, e))?;
    }
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(scenario: &str, policy: &str, cost: &str, budget: Option<f64>) -> SummaryRow {
        SummaryRow {
            scenario: scenario.into(),
            policy: policy.into(),
            cost_policy: cost.into(),
            budget_frac: budget,
            seeds: 3,
            quality_mean: 0.5,
            quality_std: 0.05,
            quality_pct_of_best: 80.0,
            cost_pct_of_best: budget.map_or(40.0, |b| b * 100.0),
            regret_final: 1.0,
            regret_100: None,
            regret_300: None,
            unserved_mean: 0.0,
            overridden_mean: 0.0,
            budget_held: budget.map(|_| true),
            world: None,
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pilot-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn frontier_has_a_panel_per_scenario_and_cost_policy_labels_and_error_bars() {
        let mut rows = Vec::new();
        for scenario in ["standard", "task-shift"] {
            for cost in ["pacing", "threshold"] {
                for b in [0.25, 0.5] {
                    rows.push(row(scenario, "pilot", cost, Some(b)));
                }
            }
        }
        rows.push(row("any", "offline-mckp", OFFLINE, Some(0.25)));
        rows.push(row("any", "offline-mckp", OFFLINE, Some(0.5)));
        rows.push(row("any", "single:meta/llama-2-70b-chat", "none", None));
        rows.push(row("any", ORACLE, "none", None));
        let path = scratch("frontier.svg");
        frontier_svg(&path, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for caption in [
            "(standard, pacing)",
            "(standard, threshold)",
            "(task-shift, pacing)",
            "(task-shift, threshold)",
        ] {
            assert!(svg.contains(caption), "no panel {caption}");
        }
        assert!(
            !svg.contains("(any, offline)"),
            "the offline rows are no panel"
        );
        assert!(
            svg.contains("llama-2-70b-chat"),
            "single-LLM markers are labelled"
        );
        assert!(
            svg.lines().any(|l| l.trim() == "oracle"),
            "the oracle marker is labelled"
        );
        assert!(svg.contains("offline optimum"));
        assert!(svg.contains("±std"));
    }

    #[test]
    fn regret_has_a_panel_per_scenario_and_cost_policy_at_the_budget() {
        let curve = |s: &str, c: &str, b: f64| RegretCurve {
            scenario: s.into(),
            policy: "pilot".into(),
            cost_policy: c.into(),
            budget_frac: b,
            mean: vec![0.5, 1.0, 1.2],
            change_step: (s == "drift").then_some(2),
        };
        let curves = vec![
            curve("standard", "pacing", 0.25),
            curve("task-shift", "threshold", 0.25),
            curve("standard", "pacing", 0.5),
        ];
        let path = scratch("regret.svg");
        regret_svg(&path, &curves, 0.25).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("(standard, pacing, budget 25%)"));
        assert!(svg.contains("(task-shift, threshold, budget 25%)"));
        assert!(!svg.contains("budget 50%"));
        assert!(!svg.contains("change at query"), "no change, no mark");

        let drift = vec![curve("drift", "pacing", 0.25)];
        regret_svg(&path, &drift, 0.25).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("change at query 2"),
            "the change point is marked"
        );
    }
}
