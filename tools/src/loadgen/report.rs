//! What `simex-loadgen` hands back: a percentile table, an interval log and a percentile spectrum.

use super::LoadResult;
use hdrhistogram::Histogram;
use plotters::prelude::*;
use simex::runtime::{write_tagged_interval_log, TaggedInterval};
use std::fmt::Write as _;
use std::path::Path;

/// The quantiles of the table (and its column names).
const QUANTILES: [(f64, &str); 6] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99"), (1.0, "max")];

/// A Markdown table: one row per message type, microseconds.
pub fn percentile_table(result: &LoadResult) -> String {
    let mut table = String::from("| message | count |");
    for (_, name) in QUANTILES {
        let _ = write!(table, " {name} µs |");
    }
    table.push_str("\n| --- | --- |");
    for _ in QUANTILES {
        table.push_str(" --- |");
    }
    table.push('\n');
    for kind in result.kinds.iter().filter(|k| !k.histogram.is_empty()) {
        let _ = write!(table, "| {} | {} |", kind.name, kind.histogram.len());
        for (quantile, _) in QUANTILES {
            let value_ns =
                if quantile >= 1.0 { kind.histogram.max() } else { kind.histogram.value_at_quantile(quantile) };
            let _ = write!(table, " {:.1} |", value_ns as f64 / 1_000.0);
        }
        table.push('\n');
    }
    table
}

/// Writes the per-second, per-connection, per-type histograms as a V2+DEFLATE interval log.
pub fn write_interval_log(result: &LoadResult, path: &Path) -> std::io::Result<()> {
    let entries: Vec<TaggedInterval<'_>> = result
        .intervals
        .iter()
        .map(|interval| TaggedInterval {
            tag: interval.tag.clone(),
            start_offset: interval.start_offset,
            length: interval.length,
            histogram: &interval.histogram,
        })
        .collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_tagged_interval_log(
        &mut file,
        result.start_time,
        "simex-loadgen round trips, values in nanoseconds",
        &entries,
    )
}

/// The x coordinate of a quantile on a percentile-spectrum plot: log10 of 1/(1-q), so 90% is 1,
/// 99% is 2, 99.9% is 3.
fn spectrum_x(quantile: f64) -> f64 {
    -(1.0 - quantile).max(1e-6).log10()
}

/// Draws latency against percentile (log scale of the tail) for every message type.
pub fn draw_spectrum(result: &LoadResult, path: &Path, title: &str) -> anyhow::Result<()> {
    let drawn: Vec<(&str, &Histogram<u64>)> =
        result.kinds.iter().filter(|k| !k.histogram.is_empty()).map(|k| (k.name.as_str(), &k.histogram)).collect();
    let max_us = drawn.iter().map(|(_, h)| h.max() as f64 / 1_000.0).fold(1.0, f64::max);
    let x_max = 5.0;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..max_us * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_labels(6)
        .x_label_formatter(&|x| {
            let percent = 100.0 * (1.0 - 10f64.powf(-x));
            format!("{percent:.3}%").trim_end_matches('0').trim_end_matches('.').to_string()
        })
        .draw()?;
    let palette = [RED, BLUE, GREEN, MAGENTA, CYAN];
    for (index, (name, histogram)) in drawn.iter().enumerate() {
        let color = palette[index % palette.len()];
        let points: Vec<(f64, f64)> = histogram
            .iter_quantiles(4)
            .map(|step| (spectrum_x(step.quantile_iterated_to()), step.value_iterated_to() as f64 / 1_000.0))
            .filter(|(x, _)| *x <= x_max)
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spectrum_axis_spreads_the_tail() {
        assert!((spectrum_x(0.9) - 1.0).abs() < 1e-9);
        assert!((spectrum_x(0.999) - 3.0).abs() < 1e-9);
        assert!(spectrum_x(1.0) <= 6.0 + 1e-9);
    }
}
