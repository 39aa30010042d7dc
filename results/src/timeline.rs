//! The timeline of a run, as SVG: one row per client process, each
//! operation a bar from invoke to completion coloured by outcome, each fault
//! a labelled band across every row.
//!
//! An operation that never completed runs to the end of the history, drawn
//! hatched. Bars under two pixels wide are rasterized per pixel column and
//! outcome, each outcome in its own third of the row (so neither hides the
//! other), so a run of 100,000
//! operations gives an SVG of bounded size (at most a few bars per pixel
//! column and row); a wider bar stands for one operation and carries a
//! tooltip (process, f, outcome, latency, node).

use crate::fault_interval::FaultInterval;
use crate::op_span::{OpOutcome, OpSpan};
use crate::plot::{fault_rgb, hex, outcome_rgb};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Width of the drawing area (px), without the row labels.
pub const TIMELINE_WIDTH: f64 = 1400.0;
const LABEL_WIDTH: f64 = 56.0;
const AXIS_HEIGHT: f64 = 22.0;
const BAND_LABEL_HEIGHT: f64 = 16.0;
/// Narrower bars are rasterized per pixel column (see [`svg`]).
const MIN_BAR_PX: f64 = 2.0;

/// Escapes text for HTML and SVG (text and attribute values).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

struct Bar {
    x0: f64,
    x1: f64,
    outcome: OpOutcome,
    open: bool,
    ops: usize,
    tip: String,
    /// Rasterized bars sit in their outcome's third of the row.
    lane: Option<usize>,
}

/// Draws the timeline. `end_ns` is the end of the history.
pub fn svg(spans: &[OpSpan], faults: &[FaultInterval], end_ns: u64) -> String {
    let mut rows: BTreeMap<u64, Vec<&OpSpan>> = BTreeMap::new();
    for s in spans {
        rows.entry(s.process).or_default().push(s);
    }
    let row_h: f64 = match rows.len() {
        0..=40 => 14.0,
        41..=120 => 7.0,
        _ => 3.0,
    };
    let end = end_ns.max(1) as f64;
    let x = |ns: u64| LABEL_WIDTH + ns as f64 / end * TIMELINE_WIDTH;
    let top = BAND_LABEL_HEIGHT;
    let height = top + rows.len().max(1) as f64 * row_h + AXIS_HEIGHT;
    let width = LABEL_WIDTH + TIMELINE_WIDTH + 8.0;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="10">"#
    );
    let _ = write!(
        out,
        r#"<defs><pattern id="tl-open" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="4" fill="{}" fill-opacity="0.5"/></pattern></defs>"#,
        hex(outcome_rgb(OpOutcome::Info))
    );
    // Fault bands under the bars.
    for (i, f) in faults.iter().enumerate() {
        let (x0, x1) = (x(f.start_ns), x(f.end_ns).max(x(f.start_ns) + 1.0));
        let c = hex(fault_rgb(&f.fault));
        let label = if f.healed {
            f.label()
        } else {
            format!("{} (not healed)", f.label())
        };
        let _ = write!(
            out,
            r#"<g class="fault"><title>{title}</title><rect x="{x0:.1}" y="{top:.1}" width="{w:.1}" height="{h:.1}" fill="{c}" fill-opacity="0.14"/><text x="{x0:.1}" y="{ty:.1}" fill="{c}">{label}</text></g>"#,
            title = escape(&format!(
                "{} from {:.3}s to {:.3}s",
                label,
                f.start_ns as f64 / 1e9,
                f.end_ns as f64 / 1e9
            )),
            w = x1 - x0,
            h = height - top - AXIS_HEIGHT,
            ty = 11.0 + (i % 2) as f64 * 0.0,
            label = escape(&label),
        );
    }
    for (r, (process, ops)) in rows.iter().enumerate() {
        let y = top + r as f64 * row_h;
        if row_h >= 7.0 {
            let _ = write!(
                out,
                r##"<text x="{lx:.1}" y="{ty:.1}" text-anchor="end" fill="#444">p{process}</text>"##,
                lx = LABEL_WIDTH - 4.0,
                ty = y + row_h - 3.0
            );
        }
        // Bars at least MIN_BAR_PX wide (and never-completed ones) are drawn
        // one by one; narrower ones are rasterized per pixel column and
        // outcome, and each run of covered columns becomes one bar.
        let mut bars: Vec<Bar> = Vec::new();
        let columns = (LABEL_WIDTH + TIMELINE_WIDTH).ceil() as usize + 2;
        // Per outcome and column: is it covered, and how many bars start there.
        let mut cover: [Vec<bool>; 3] = [
            vec![false; columns],
            vec![false; columns],
            vec![false; columns],
        ];
        let mut starts: [Vec<u32>; 3] = [vec![0; columns], vec![0; columns], vec![0; columns]];
        for s in ops {
            let open = s.end_ns.is_none();
            let x0 = x(s.start_ns);
            let x1 = x(s.end_ns.unwrap_or(end_ns)).max(x0 + 0.8);
            if !open && x1 - x0 < MIN_BAR_PX {
                let first = (x0.floor() as usize).min(columns - 1);
                starts[s.outcome as usize][first] += 1;
                let last = (x1.ceil() as usize).clamp(first + 1, columns);
                cover[s.outcome as usize][first..last].fill(true);
                continue;
            }
            let latency = s.latency_ns().map_or_else(
                || "never completed".to_string(),
                |l| format!("{:.3} ms", l as f64 / 1e6),
            );
            let tip = format!(
                "p{} {} {} at {:.3}s, {}{}",
                s.process,
                s.f,
                s.outcome.as_str(),
                s.start_ns as f64 / 1e9,
                latency,
                s.node
                    .as_ref()
                    .map(|n| format!(", {n}"))
                    .unwrap_or_default()
            );
            bars.push(Bar {
                x0,
                x1,
                outcome: s.outcome,
                open,
                ops: 1,
                tip,
                lane: None,
            });
        }
        // Each outcome in its own third of the row (ok, fail, info from the
        // top), so a rare failure among many oks stays visible and a common
        // one does not hide them.
        let mut runs: Vec<Bar> = Vec::new();
        for outcome in OpOutcome::ALL {
            let (c, n) = (&cover[outcome as usize], &starts[outcome as usize]);
            let mut col = 0;
            while col < columns {
                if !c[col] {
                    col += 1;
                    continue;
                }
                let start = col;
                let mut count = 0u64;
                while col < columns && c[col] {
                    count += u64::from(n[col]);
                    col += 1;
                }
                runs.push(Bar {
                    x0: start as f64,
                    x1: col as f64,
                    outcome,
                    open: false,
                    ops: count.max(1) as usize,
                    tip: String::new(),
                    lane: Some(outcome as usize),
                });
            }
        }
        runs.extend(bars);
        let bars = runs;
        for b in bars {
            let fill = if b.open {
                "url(#tl-open)".to_string()
            } else {
                hex(outcome_rgb(b.outcome))
            };
            let tip = if b.tip.is_empty() {
                format!(
                    "{} short {} operation{}",
                    b.ops,
                    b.outcome.as_str(),
                    if b.ops == 1 { "" } else { "s" }
                )
            } else {
                b.tip
            };
            let _ = write!(
                out,
                r#"<rect class="op {cls}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}"><title>{tip}</title></rect>"#,
                cls = b.outcome.as_str(),
                x0 = b.x0,
                y = y + 1.0 + b.lane.map_or(0.0, |l| l as f64 * (row_h - 2.0) / 3.0),
                w = b.x1 - b.x0,
                h = match b.lane {
                    Some(_) => ((row_h - 2.0) / 3.0).max(1.0),
                    None => (row_h - 2.0).max(1.0),
                },
                tip = escape(&tip),
            );
        }
    }
    // Time axis: about ten ticks at round seconds.
    let axis_y = height - AXIS_HEIGHT;
    let span_s = end / 1e9;
    let step = nice_step(span_s / 10.0);
    let _ = write!(
        out,
        r##"<line x1="{LABEL_WIDTH}" y1="{axis_y:.1}" x2="{x2:.1}" y2="{axis_y:.1}" stroke="#888"/>"##,
        x2 = LABEL_WIDTH + TIMELINE_WIDTH
    );
    let mut t = 0.0;
    while t <= span_s + 1e-9 && step > 0.0 {
        let tx = LABEL_WIDTH + t / span_s.max(1e-9) * TIMELINE_WIDTH;
        let _ = write!(
            out,
            r##"<line x1="{tx:.1}" y1="{axis_y:.1}" x2="{tx:.1}" y2="{y2:.1}" stroke="#888"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" fill="#444">{t}s</text>"##,
            y2 = axis_y + 4.0,
            ty = axis_y + 15.0,
            t = trim_float(t)
        );
        t += step;
    }
    out.push_str("</svg>");
    out
}

fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

fn trim_float(t: f64) -> String {
    let s = format!("{t:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(p: u64, start_ms: u64, end_ms: Option<u64>, outcome: OpOutcome) -> OpSpan {
        OpSpan {
            process: p,
            f: "read".into(),
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms.map(|e| e * 1_000_000),
            outcome,
            node: Some("n<1>".into()),
        }
    }

    #[test]
    fn one_row_per_process_bars_by_outcome_and_fault_bands() {
        let spans = vec![
            span(0, 0, Some(100), OpOutcome::Ok),
            span(1, 50, Some(400), OpOutcome::Fail),
            span(2, 60, None, OpOutcome::Info),
        ];
        let faults = vec![FaultInterval {
            fault: "kill".into(),
            start_ns: 200_000_000,
            end_ns: 300_000_000,
            healed: true,
            detail: "n1".into(),
            error: None,
        }];
        let svg = svg(&spans, &faults, 1_000_000_000);
        assert_eq!(svg.matches(r#"<rect class="op "#).count(), 3);
        assert_eq!(svg.matches(">p1</text>").count(), 1);
        assert!(svg.contains(r#"class="op fail""#));
        assert!(
            svg.contains("url(#tl-open)"),
            "never-completed op is hatched"
        );
        assert!(svg.contains(">kill n1</text>"));
        assert!(svg.contains("n&lt;1&gt;"), "tooltips are escaped");
        assert!(!svg.contains("n<1>"));
        // The fail bar spans 50..400 ms of 1 s: 350/1000 of the width.
        let want = format!(r#"width="{:.1}""#, 0.35 * TIMELINE_WIDTH);
        assert!(svg.contains(&want), "{want}");
    }

    #[test]
    fn dense_rows_merge_subpixel_bars_of_the_same_outcome() {
        let spans: Vec<OpSpan> = (0..100_000u64)
            .map(|i| OpSpan {
                process: i % 10,
                f: "write".into(),
                start_ns: i * 1_000_000,
                end_ns: Some(i * 1_000_000 + 900_000),
                outcome: if i % 1000 == 7 {
                    OpOutcome::Fail
                } else {
                    OpOutcome::Ok
                },
                node: None,
            })
            .collect();
        let svg = svg(&spans, &[], 100_000 * 1_000_000);
        let bars = svg.matches(r#"<rect class="op "#).count();
        assert!(bars < 5_000, "{bars} bars");
        assert_eq!(
            svg.matches(r#"class="op fail""#).count(),
            100,
            "every fail still visible"
        );
        assert_eq!(
            svg.matches("<title>1 short fail operation</title>").count(),
            100
        );
        // Every operation is counted in exactly one bar's tooltip.
        let counted: usize = svg
            .match_indices("<title>")
            .filter_map(|(i, _)| svg[i + 7..].split(' ').next()?.parse::<usize>().ok())
            .sum();
        assert_eq!(counted, 100_000);
        assert!(svg.len() < 2_000_000, "{} bytes", svg.len());
    }
}
