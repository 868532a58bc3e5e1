//! The drawing half of `backflow scale`: speedup of `Parallel` against threads as SVG.

use super::measure::{ratios, Row};
use super::CliResult;
use backflow::Scheduler;
use plotters::prelude::*;
use std::path::Path;

/// Line colours that stay apart on white and from each other (Okabe–Ito, colour-blind
/// safe), in the order the workloads come.
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermilion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Writes [`render_svg`]'s plot to `path`, atomically (a failed write leaves an earlier
/// file there as it was).
pub fn write_svg(path: &Path, rows: &[Row], cores: usize) -> CliResult {
    let svg = render_svg(rows, cores)?;
    backflow::io::write_atomic(path, svg)?;
    Ok(())
}

/// Speedup of `Parallel` against threads as SVG, one curve per workload, with the ideal
/// line. The thread axis starts at 1 and has a tick at each measured (whole) thread count.
fn render_svg(rows: &[Row], cores: usize) -> Result<String, Box<dyn std::error::Error>> {
    let parallel: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scheduler == Scheduler::Parallel)
        .collect();
    let mut ticks: Vec<usize> = parallel.iter().map(|r| r.threads).collect();
    ticks.push(1);
    ticks.sort_unstable();
    ticks.dedup();
    let max_p = ticks.last().copied().unwrap_or(1).max(2) as u32;
    let max_s = parallel
        .iter()
        .map(|r| ratios(r, rows).speedup)
        .filter(|s| s.is_finite())
        .fold(f64::from(max_p), f64::max);
    let mut svg = String::new();
    draw(&mut svg, rows, &parallel, &ticks, max_p, max_s, cores)?;
    Ok(svg)
}

/// Draws the plot into `svg`.
fn draw(
    svg: &mut String,
    rows: &[Row],
    parallel: &[&Row],
    ticks: &[usize],
    max_p: u32,
    max_s: f64,
    cores: usize,
) -> CliResult {
    let root = SVGBackend::with_string(svg, (720, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    // Whole thread counts: a tick at each one measured, from 1.
    let x_axis = (1u32..max_p).with_key_points(ticks.iter().map(|&p| p as u32).collect());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("backflow backward: speedup vs threads ({cores} cores)"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(48)
        .build_cartesian_2d(x_axis, 0.0..max_s * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("speedup over parallel at 1 thread")
        .light_line_style(WHITE)
        .draw()?;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(LineSeries::new(
            [(1, 1.0), (max_p, f64::from(max_p))],
            grey.stroke_width(1),
        ))?
        .label("ideal")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], grey.stroke_width(1)));
    let mut names: Vec<&str> = parallel.iter().map(|r| r.workload).collect();
    names.dedup();
    for (i, name) in names.into_iter().enumerate() {
        let color = COLOURS[i % COLOURS.len()];
        let points: Vec<(u32, f64)> = parallel
            .iter()
            .filter(|r| r.workload == name)
            .map(|r| (r.threads as u32, ratios(r, rows).speedup))
            .filter(|(_, s)| s.is_finite())
            .collect();
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(threads: usize, ms: f64) -> Row {
        Row {
            workload: "w2",
            scheduler: Scheduler::Parallel,
            threads,
            nodes: 10,
            times: vec![ms / 1e3],
            base_mib: None,
            peak_mib: None,
            graph_bytes_per_node: None,
        }
    }

    #[test]
    fn the_thread_axis_has_whole_ticks_from_one() {
        let rows = [row(1, 8.0), row(2, 4.5), row(4, 2.5), row(6, 2.0)];
        let path = std::env::temp_dir().join(format!("backflow-plot-{}.svg", std::process::id()));
        write_svg(&path, &rows, 6).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        // The x tick labels sit on one baseline below the plot: collect them in order.
        let labels: Vec<&str> = svg
            .split("<text")
            .filter(|t| t.contains("text-anchor=\"middle\"") && t.contains("dy=\"0.76em\""))
            .filter_map(|t| t.split('>').nth(1))
            .map(|t| t.split('<').next().unwrap_or("").trim())
            .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(labels, ["1", "2", "4", "6"], "{svg}");
        let blue = format!("#{:02X}{:02X}{:02X}", 0, 114, 178);
        assert!(svg.contains(&blue), "the first curve is blue");
    }
}
