//! SVG plots (plotters): the cost–quality frontier and the regret curves.

use std::path::Path;

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

fn plot_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Plot {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

/// Quality (% of the reference LLM) against cost (% of the reference LLM), one line per
/// policy over the budgets, for the rows of `scenario` and `cost_policy`; unbudgeted
/// references (single LLMs, oracle) as points.
///
/// # Errors
/// [`SimError::Plot`] when the SVG cannot be drawn or written.
pub fn frontier_svg(
    path: &Path,
    rows: &[SummaryRow],
    scenario: &str,
    cost_policy: &str,
) -> Result<()> {
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in rows.iter().filter(|r| {
        r.scenario == scenario && r.cost_policy == cost_policy && r.budget_frac.is_some()
    }) {
        let point = (r.cost_pct_of_best, r.quality_pct_of_best);
        match series.iter_mut().find(|(n, _)| *n == r.policy) {
            Some((_, pts)) => pts.push(point),
            None => series.push((r.policy.clone(), vec![point])),
        }
    }
    for (_, pts) in &mut series {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let refs: Vec<&SummaryRow> = rows.iter().filter(|r| r.budget_frac.is_none()).collect();
    let all = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .chain(
            refs.iter()
                .map(|r| (r.cost_pct_of_best, r.quality_pct_of_best)),
        )
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in all {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 100.0);
    }
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Cost–quality frontier ({scenario}, {cost_policy})"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..x_max * 1.05, (y_min - 2.0)..(y_max + 2.0))
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("cost, % of the reference LLM")
        .y_desc("quality, % of the reference LLM")
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| plot_err(path, e))?;
    }
    chart
        .draw_series(refs.iter().filter_map(|r| {
            let p = (r.cost_pct_of_best, r.quality_pct_of_best);
            (p.0.is_finite() && p.1.is_finite()).then(|| Cross::new(p, 4, BLACK.stroke_width(1)))
        }))
        .map_err(|e| plot_err(path, e))?
        .label("single LLMs / oracle")
        .legend(|(x, y)| Cross::new((x + 8, y), 4, BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// Mean cumulative regret against the per-query oracle over the stream, one line per policy,
/// for one scenario, cost policy and budget.
///
/// # Errors
/// [`SimError::Plot`] when the SVG cannot be drawn or written.
pub fn regret_svg(
    path: &Path,
    curves: &[RegretCurve],
    scenario: &str,
    cost_policy: &str,
    budget_frac: f64,
) -> Result<()> {
    let chosen: Vec<&RegretCurve> = curves
        .iter()
        .filter(|c| {
            c.scenario == scenario
                && c.cost_policy == cost_policy
                && (c.budget_frac - budget_frac).abs() < 1e-12
        })
        .collect();
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
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Cumulative regret vs the per-query oracle ({scenario}, {cost_policy}, budget {:.0}%)",
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
        .y_desc("cumulative regret")
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, c) in chosen.iter().enumerate() {
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
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}
