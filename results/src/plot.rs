//! The plots of a run, drawn with plotters: SVG for the report, PNG files
//! beside it.
//!
//! Three plots: the latency of every completed operation over time (points
//! coloured by outcome, log scale), latency quantiles over time (per
//! interval of the histogram log), and throughput over time (completions
//! per second by outcome). Each shades and labels the interval of every
//! fault. Scatter points are thinned to one per pixel and outcome before
//! drawing (one per 2×2 pixels), which leaves the picture unchanged and keeps the SVG of a run of
//! 100,000 operations small.
//!
//! Text needs a TrueType font: the first of [`FONT_PATHS`] that exists (or
//! the file named by `FAULTLINE_FONT`). Without one, plotting fails with
//! [`PlotError::NoFont`] and the report says so instead of drawing.

use crate::fault_interval::FaultInterval;
use crate::histogram_log::LatencyHistograms;
use crate::op_span::{OpOutcome, OpSpan};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where fonts are looked for (Debian: fonts-dejavu-core, fonts-liberation).
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 360;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlotError {
    #[error("no TrueType font found for plot text (install fonts-dejavu-core, or set FAULTLINE_FONT to a .ttf file); looked in {0}")]
    NoFont(String),
    #[error("drawing the {plot} plot: {message}")]
    Draw { plot: &'static str, message: String },
}

/// The plots of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotKind {
    Latency,
    Quantiles,
    Throughput,
}

impl PlotKind {
    pub const ALL: [PlotKind; 3] = [PlotKind::Latency, PlotKind::Quantiles, PlotKind::Throughput];

    /// File name stem: `plots/<stem>.png`.
    pub fn stem(self) -> &'static str {
        match self {
            PlotKind::Latency => "latency-raw",
            PlotKind::Quantiles => "latency-quantiles",
            PlotKind::Throughput => "throughput",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            PlotKind::Latency => "Latency of every operation",
            PlotKind::Quantiles => "Latency quantiles over time (all completed operations)",
            PlotKind::Throughput => "Throughput (completions per second)",
        }
    }
}

/// What the plots are drawn from.
pub struct PlotData<'a> {
    pub spans: &'a [OpSpan],
    pub faults: &'a [FaultInterval],
    pub histograms: &'a LatencyHistograms,
    /// Length of the x axis, seconds.
    pub duration_s: f64,
}

/// Outcome colours, shared with the report and timeline.
pub fn outcome_rgb(o: OpOutcome) -> RGBColor {
    match o {
        OpOutcome::Ok => RGBColor(0x25, 0x63, 0xeb),
        OpOutcome::Fail => RGBColor(0xdc, 0x26, 0x26),
        OpOutcome::Info => RGBColor(0xf5, 0x9e, 0x0b),
    }
}

/// Band colour of a fault kind, shared with the timeline.
pub fn fault_rgb(fault: &str) -> RGBColor {
    match fault {
        "partition" => RGBColor(0x64, 0x74, 0x8b),
        "kill" => RGBColor(0xb9, 0x1c, 0x1c),
        "pause" => RGBColor(0x7c, 0x3a, 0xed),
        "clock" => RGBColor(0x0d, 0x94, 0x88),
        "loss" => RGBColor(0x92, 0x40, 0x0e),
        "latency" => RGBColor(0x15, 0x80, 0x3d),
        "membership" => RGBColor(0x1d, 0x4e, 0xd8),
        _ => RGBColor(0x52, 0x52, 0x5b),
    }
}

/// Hex text of a colour, for CSS and SVG.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

static FONT: OnceLock<Result<PathBuf, PlotError>> = OnceLock::new();

/// Registers a font for plot text, once per process.
pub fn ensure_font() -> Result<(), PlotError> {
    FONT.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("FAULTLINE_FONT") {
            candidates.push(PathBuf::from(p));
        }
        candidates.extend(FONT_PATHS.iter().map(PathBuf::from));
        for path in &candidates {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // The font must live as long as the process: plotters keeps it.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            let ok = ["sans-serif", "serif", "monospace"].iter().all(|family| {
                plotters::style::register_font(family, FontStyle::Normal, bytes).is_ok()
                    && plotters::style::register_font(family, FontStyle::Bold, bytes).is_ok()
            });
            if ok {
                return Ok(path.clone());
            }
        }
        Err(PlotError::NoFont(
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ))
    })
    .clone()
    .map(|_| ())
}

/// Draws one plot as SVG text.
pub fn svg(kind: PlotKind, data: &PlotData) -> Result<String, PlotError> {
    ensure_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, kind, data).map_err(|message| PlotError::Draw {
            plot: kind.stem(),
            message,
        })?;
    }
    Ok(out)
}

/// Draws one plot into a PNG file.
pub fn png(kind: PlotKind, data: &PlotData, path: &Path) -> Result<(), PlotError> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(root, kind, data).map_err(|message| PlotError::Draw {
        plot: kind.stem(),
        message,
    })
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    kind: PlotKind,
    data: &PlotData,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match kind {
        PlotKind::Latency => draw_latency(&root, data),
        PlotKind::Quantiles => draw_quantiles(&root, data),
        PlotKind::Throughput => draw_throughput(&root, data),
    }
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A log-scale latency axis range (ms) that covers `max_ms`.
fn latency_range(min_ms: f64, max_ms: f64) -> (f64, f64) {
    let lo = if min_ms > 0.0 { min_ms.min(1.0) } else { 0.1 };
    let lo = 10f64.powf(lo.log10().floor()).max(0.001);
    let hi = 10f64.powf(max_ms.max(10.0).log10().ceil());
    (lo, hi)
}

/// Shades every fault from `y_lo` to `y_hi` and labels it at the top.
fn draw_faults<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    faults: &[FaultInterval],
    y_lo: Y::ValueType,
    y_hi: Y::ValueType,
    label_y: impl Fn(usize) -> Y::ValueType,
) -> DrawResult<DB>
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
{
    for f in faults {
        let c = fault_rgb(&f.fault);
        chart.draw_series(std::iter::once(Rectangle::new(
            [
                (f.start_ns as f64 / 1e9, y_lo.clone()),
                (f.end_ns as f64 / 1e9, y_hi.clone()),
            ],
            c.mix(0.13).filled(),
        )))?;
    }
    for (i, f) in faults.iter().enumerate() {
        let c = fault_rgb(&f.fault);
        let text = if f.healed {
            f.label()
        } else {
            format!("{} (not healed)", f.label())
        };
        chart.draw_series(std::iter::once(Text::new(
            text,
            (f.start_ns as f64 / 1e9, label_y(i % 3)),
            ("sans-serif", 11).into_font().color(&c),
        )))?;
    }
    Ok(())
}

fn draw_latency<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
) -> DrawResult<DB> {
    let lat_ms = |s: &OpSpan| s.latency_ns().map(|ns| (ns as f64 / 1e6).max(0.001));
    let (mut min_ms, mut max_ms) = (f64::MAX, 0.0f64);
    for ms in data.spans.iter().filter_map(lat_ms) {
        min_ms = min_ms.min(ms);
        max_ms = max_ms.max(ms);
    }
    let (lo, hi) = latency_range(if max_ms > 0.0 { min_ms } else { 0.1 }, max_ms);
    let x_max = data.duration_s.max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(PlotKind::Latency.title(), ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    draw_faults(&mut chart, data.faults, lo, hi, |i| {
        hi / 10f64.powf(0.12 * i as f64 + 0.02)
    })?;
    // One point per 2×2 pixels and outcome (points are 4 px wide): the
    // picture is the same, the SVG small.
    let (log_lo, log_hi) = (lo.log10(), hi.log10());
    for outcome in OpOutcome::ALL {
        let mut seen: HashSet<(u32, u32)> = HashSet::new();
        let points: Vec<(f64, f64)> = data
            .spans
            .iter()
            .filter(|s| s.outcome == outcome)
            .filter_map(|s| {
                let ms = lat_ms(s)?;
                let x = s.start_ns as f64 / 1e9;
                let px = (x / x_max * WIDTH as f64 / 2.0) as u32;
                let py = ((ms.log10() - log_lo) / (log_hi - log_lo) * HEIGHT as f64 / 2.0) as u32;
                seen.insert((px, py)).then_some((x, ms))
            })
            .collect();
        let c = outcome_rgb(outcome);
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 2, c.mix(0.75).filled())),
            )?
            .label(outcome.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

fn draw_quantiles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
) -> DrawResult<DB> {
    let h = data.histograms;
    let quantiles: [(f64, &str, RGBColor); 5] = [
        (0.5, "p50", RGBColor(0x25, 0x63, 0xeb)),
        (0.9, "p90", RGBColor(0x05, 0x96, 0x69)),
        (0.99, "p99", RGBColor(0xd9, 0x77, 0x06)),
        (0.999, "p99.9", RGBColor(0xdc, 0x26, 0x26)),
        (1.0, "max", RGBColor(0x40, 0x40, 0x40)),
    ];
    let half = h.interval_ns as f64 / 2e9;
    let merged: Vec<(f64, hdrhistogram::Histogram<u64>)> = (0..h.intervals.len())
        .map(|i| (h.interval_start_s(i) + half, h.merged_interval(i, |_| true)))
        .filter(|(_, m)| !m.is_empty())
        .collect();
    let ms = |us: u64| (us as f64 / 1000.0).max(0.001);
    let max_ms = merged.iter().map(|(_, m)| ms(m.max())).fold(0.0, f64::max);
    let min_ms = merged
        .iter()
        .map(|(_, m)| ms(m.min()))
        .fold(f64::MAX, f64::min);
    let (lo, hi) = latency_range(if merged.is_empty() { 0.1 } else { min_ms }, max_ms);
    let x_max = data.duration_s.max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(PlotKind::Quantiles.title(), ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms)")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    draw_faults(&mut chart, data.faults, lo, hi, |i| {
        hi / 10f64.powf(0.12 * i as f64 + 0.02)
    })?;
    for (q, name, c) in quantiles {
        let line: Vec<(f64, f64)> = merged
            .iter()
            .map(|(t, m)| (*t, ms(m.value_at_quantile(q))))
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), c.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        if line.len() < 200 {
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

fn draw_throughput<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &PlotData,
) -> DrawResult<DB> {
    let h = data.histograms;
    let half = h.interval_ns as f64 / 2e9;
    let tp = h.throughput();
    let y_max = tp
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max)
        * 1.15;
    let x_max = data.duration_s.max(1e-3);
    let mut chart = ChartBuilder::on(root)
        .caption(PlotKind::Throughput.title(), ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("operations / s")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    draw_faults(&mut chart, data.faults, 0.0, y_max, |i| {
        y_max * (0.99 - 0.06 * i as f64)
    })?;
    for outcome in OpOutcome::ALL {
        let c = outcome_rgb(outcome);
        let line: Vec<(f64, f64)> = tp
            .iter()
            .map(|(t, v)| (t + half, v[outcome as usize]))
            .collect();
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(outcome.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<OpSpan>, Vec<FaultInterval>) {
        let mut spans = Vec::new();
        for i in 0..20_000u64 {
            let outcome = match i % 10 {
                0 => OpOutcome::Fail,
                1 => OpOutcome::Info,
                _ => OpOutcome::Ok,
            };
            spans.push(OpSpan {
                process: i % 7,
                f: if i % 2 == 0 { "read" } else { "write" }.into(),
                start_ns: i * 500_000,
                end_ns: Some(i * 500_000 + 1_000_000 + (i % 97) * 100_000),
                outcome,
                node: None,
            });
        }
        let faults = vec![FaultInterval {
            fault: "partition".into(),
            start_ns: 2_000_000_000,
            end_ns: 5_000_000_000,
            healed: true,
            detail: "majorities-ring".into(),
            error: None,
        }];
        (spans, faults)
    }

    #[test]
    fn svgs_hold_the_points_bands_and_labels() {
        let (spans, faults) = data();
        let h = LatencyHistograms::from_spans(&spans, 10_000_000_000);
        let d = PlotData {
            spans: &spans,
            faults: &faults,
            histograms: &h,
            duration_s: 10.0,
        };
        let svg = svg(PlotKind::Latency, &d).expect("latency svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        assert!(svg.contains("partition majorities-ring"), "fault label");
        assert!(svg.contains("Latency of every operation"));
        let circles = svg.matches("<circle").count();
        // Thinned, but every outcome drawn: fewer points than ops, more than a few.
        assert!(circles > 300 && circles < 20_000, "{circles} circles");
        for outcome in ["ok", "fail", "info"] {
            assert!(
                svg.contains(&format!(">{outcome}<")) || svg.contains(&format!(">\n{outcome}")),
                "legend {outcome}"
            );
        }
        let q = super::svg(PlotKind::Quantiles, &d).expect("quantiles");
        assert!(
            q.contains("p99.9") && q.contains("<polyline"),
            "quantile lines"
        );
        let t = super::svg(PlotKind::Throughput, &d).expect("throughput");
        assert!(t.contains("operations / s") && t.contains("partition"));
    }

    #[test]
    fn pngs_are_written_with_text() {
        let (spans, faults) = data();
        let h = LatencyHistograms::from_spans(&spans, 10_000_000_000);
        let d = PlotData {
            spans: &spans,
            faults: &faults,
            histograms: &h,
            duration_s: 10.0,
        };
        let dir = tempfile::tempdir().expect("tempdir");
        for kind in PlotKind::ALL {
            let p = dir.path().join(format!("{}.png", kind.stem()));
            png(kind, &d, &p).expect("png");
            let bytes = std::fs::read(&p).expect("read png");
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(bytes.len() > 5_000, "{} bytes", bytes.len());
        }
        if std::env::var_os("FAULTLINE_KEEP_PLOTS").is_some() {
            let keep = std::env::temp_dir().join("faultline-plots");
            std::fs::create_dir_all(&keep).expect("mkdir");
            for kind in PlotKind::ALL {
                let name = format!("{}.png", kind.stem());
                std::fs::copy(dir.path().join(&name), keep.join(&name)).expect("copy");
            }
        }
    }

    #[test]
    fn an_empty_history_still_draws() {
        let h = LatencyHistograms::from_spans(&[], 0);
        let d = PlotData {
            spans: &[],
            faults: &[],
            histograms: &h,
            duration_s: 0.0,
        };
        for kind in PlotKind::ALL {
            svg(kind, &d).expect("empty plot");
        }
    }
}
