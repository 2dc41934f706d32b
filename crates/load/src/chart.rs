//! The sweep drawn as an SVG: throughput (top) and latency (bottom, on a
//! log scale) against the offered rate, so the knee shows where completed
//! orders stop following the offer and latency climbs.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use crate::load::Run;

/// One step of the sweep, as the chart shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub offered: f64,
    pub checkouts: f64,
    pub completed: f64,
    pub checkout_p50: f64,
    pub checkout_p99: f64,
    pub processing_p50: f64,
    pub processing_p99: f64,
}

/// A line of the chart: its legend, colour and value.
type Series = (&'static str, RGBColor, fn(&Point) -> f64);

/// The open-loop runs of a sweep as points, in the order of their rate.
pub fn points(runs: &[Run]) -> Vec<Point> {
    let mut points: Vec<Point> = runs
        .iter()
        .filter_map(|run| match run.load {
            crate::load::Load::Open { rate } => Some(Point {
                offered: rate,
                checkouts: run.checkouts_per_second(),
                completed: run.completed_per_second(),
                checkout_p50: run.tally.checkout.p50,
                checkout_p99: run.tally.checkout.p99,
                processing_p50: run.tally.to_processing.p50,
                processing_p99: run.tally.to_processing.p99,
            }),
            crate::load::Load::Closed { .. } => None,
        })
        .collect();
    points.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    points
}

/// Draws `points` into an SVG file at `path`, titled with `title`.
pub fn draw(points: &[Point], title: &str, path: &Path) -> anyhow::Result<()> {
    let result = draw_inner(points, title, path);
    result
        .map_err(|error| anyhow::anyhow!("{error}"))
        .with_context(|| format!("failed to draw {}", path.display()))
}

fn draw_inner(
    points: &[Point],
    title: &str,
    path: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (top, bottom) = root.split_vertically(440);

    let max_rate = points.iter().map(|p| p.offered).fold(10.0, f64::max) * 1.05;
    let max_done = points
        .iter()
        .map(|p| p.checkouts.max(p.completed))
        .fold(max_rate, f64::max);

    let mut throughput = ChartBuilder::on(&top)
        .caption("throughput", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_rate, 0.0..max_done)?;
    throughput
        .configure_mesh()
        .x_desc("offered orders/s")
        .y_desc("per second")
        .draw()?;
    let series: [Series; 3] = [
        ("offered", RGBColor(150, 150, 150), |p| p.offered),
        ("checkouts/s", BLUE, |p| p.checkouts),
        ("orders/s to processing", RED, |p| p.completed),
    ];
    for (name, colour, value) in series {
        let line: Vec<(f64, f64)> = points.iter().map(|p| (p.offered, value(p))).collect();
        throughput
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        throughput.draw_series(
            line.into_iter()
                .map(|xy| Circle::new(xy, 3, colour.filled())),
        )?;
    }
    throughput
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let max_ms = points
        .iter()
        .map(|p| p.processing_p99.max(p.checkout_p99))
        .fold(10.0, f64::max)
        * 1.5;
    let mut latency = ChartBuilder::on(&bottom)
        .caption("latency (log scale)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_rate, (1.0..max_ms).log_scale())?;
    latency
        .configure_mesh()
        .x_desc("offered orders/s")
        .y_desc("milliseconds")
        .draw()?;
    let series: [Series; 4] = [
        ("checkout p50", RGBColor(120, 160, 255), |p| p.checkout_p50),
        ("checkout p99", BLUE, |p| p.checkout_p99),
        ("submit → processing p50", RGBColor(255, 150, 120), |p| {
            p.processing_p50
        }),
        ("submit → processing p99", RED, |p| p.processing_p99),
    ];
    for (name, colour, value) in series {
        let line: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.offered, value(p).max(1.0)))
            .collect();
        latency
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        latency.draw_series(
            line.into_iter()
                .map(|xy| Circle::new(xy, 3, colour.filled())),
        )?;
    }
    latency
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_is_drawn_as_an_svg_with_its_legend() {
        let points: Vec<Point> = [25.0, 50.0, 100.0, 200.0]
            .into_iter()
            .map(|offered| Point {
                offered,
                checkouts: offered.min(150.0),
                completed: offered.min(140.0),
                checkout_p50: 10.0,
                checkout_p99: 30.0 + offered,
                processing_p50: 80.0,
                processing_p99: 200.0 + offered * 3.0,
            })
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sweep.svg");
        draw(&points, "sweep", &path).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("orders/s to processing"));
        assert!(svg.contains("submit → processing p99"));
    }
}
