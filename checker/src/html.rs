//! A self-contained HTML page of a checked history: one row per process,
//! each operation a bar from its invoke to its completion in real time,
//! and the failing window of an invalid verdict highlighted.
//!
//! No scripts or outside resources: inline SVG and CSS only, so the page
//! opens anywhere. Big histories are cut to the operations around the
//! failure (or the first ones), and the page says so.

use crate::operation::{Operation, Operations, Outcome};
use crate::verdict::{Report, Verdict, Witness};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

const MAX_OPS: usize = 2000;
const WIDTH: f64 = 1400.0;
const ROW: f64 = 22.0;
const LEFT: f64 = 70.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// What to highlight: the failing op, the concurrent ones, the prefix.
#[derive(Default)]
struct Marks {
    failing: HashSet<usize>,
    concurrent: HashSet<usize>,
    prefix: HashSet<usize>,
    window: Option<(u64, u64)>,
    key: Option<String>,
}

fn marks(ops: &Operations, report: &Report) -> Marks {
    let mut m = Marks::default();
    let by_id = |id: usize| ops.ops.get(id);
    for r in &report.results {
        let Verdict::Invalid { witness } = &r.verdict else {
            continue;
        };
        let involved: Vec<&Operation> = match witness {
            Witness::Linearizability(w) => {
                m.failing.insert(w.failing_op.id);
                m.concurrent.extend(w.concurrent.iter().map(|a| a.op.id));
                m.prefix.extend(w.prefix.iter().map(|o| o.id));
                m.key = w.key.as_ref().map(|k| k.to_string());
                w.concurrent
                    .iter()
                    .map(|a| &a.op)
                    .chain(std::iter::once(&w.failing_op))
                    .collect()
            }
            Witness::Fencing(f) => {
                let v: Vec<&Operation> = f
                    .violations
                    .iter()
                    .take(1)
                    .flat_map(|v| v.ops.iter())
                    .collect();
                m.failing.extend(v.iter().map(|o| o.id));
                v
            }
            Witness::Counter(c) => {
                let v: Vec<&Operation> = c.errors.iter().take(1).map(|e| &e.read).collect();
                m.failing.extend(v.iter().map(|o| o.id));
                v
            }
            // Drawn by txn::html (a cycle, not a timeline).
            Witness::Txn(_) => Vec::new(),
            Witness::Set(s) => {
                let v: Vec<&Operation> = s.final_read.iter().collect();
                m.failing.extend(v.iter().map(|o| o.id));
                v
            }
        };
        let start = involved
            .iter()
            .filter_map(|o| by_id(o.id))
            .map(|o| o.invoke_time)
            .min();
        let end = involved
            .iter()
            .filter_map(|o| by_id(o.id))
            .map(|o| o.complete_time.unwrap_or(ops.end_time))
            .max();
        if let (Some(s), Some(e)) = (start, end) {
            m.window = Some((s, e));
        }
        break;
    }
    m
}

/// Renders the page for one history and its report.
pub fn render(name: &str, ops: &Operations, report: &Report) -> String {
    let m = marks(ops, report);
    let (shown, total) = shown_ops(ops, &m);
    let svg = timeline_svg(&shown, &m);
    let results = result_rows(report);
    let details = witness_details(report);
    let cut = cut_note(shown.len(), total, &m);
    let key = m
        .key
        .map(|k| {
            format!(
                "<p>Operations on key {} only (the key that fails).</p>",
                esc(&k)
            )
        })
        .unwrap_or_default();
    format!(
        r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>faultline check: {title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }} td {{ padding: 2px 10px; border-bottom: 1px solid #ddd; }}
.v-valid {{ color: #2a7; }} .v-invalid {{ color: #c33; font-weight: bold; }} .v-unknown {{ color: #c80; }}
svg text {{ font: 10px monospace; pointer-events: none; }} svg text.p {{ font-size: 12px; }}
g.ok rect {{ fill: #9ecae1; }} g.fail rect {{ fill: #ddd; }}
g.info rect {{ fill: #fdd0a2; stroke: #e6550d; stroke-dasharray: 4 2; }}
g.prefix rect {{ fill: #a1d99b; }} g.concurrent rect {{ fill: #fdae6b; stroke: #e6550d; }}
g.failing rect {{ fill: #e34a33; stroke: #900; stroke-width: 2; }}
.legend span {{ display: inline-block; padding: 1px 6px; margin-right: 6px; border-radius: 3px; }}
pre {{ background: #f6f6f6; padding: 8px; overflow-x: auto; }}
</style></head><body>
<h1>{title}: {verdict}</h1>
<table>{results}</table>
<p class="legend"><span style="background:#e34a33">cannot be placed</span><span style="background:#fdae6b">concurrent, not linearized</span><span style="background:#a1d99b">linearized prefix</span><span style="background:#9ecae1">ok</span><span style="background:#fdd0a2">info (crashed)</span><span style="background:#ddd">fail</span><span style="background:#fff3b0">failing window</span></p>
{key}{cut}
<div style="overflow-x:auto">{svg}</div>
{details}
</body></html>
"##,
        title = esc(name),
        verdict = report.verdict,
    )
}

/// The operations to draw (the failing key's, at most `MAX_OPS` around
/// the failing window) and how many there were before the cut.
fn shown_ops<'o>(ops: &'o Operations, m: &Marks) -> (Vec<&'o Operation>, usize) {
    let mut shown: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| m.key.is_none() || o.key.as_ref().map(|k| k.to_string()) == m.key)
        .collect();
    let total = shown.len();
    if shown.len() > MAX_OPS {
        let centre = match m.window {
            Some((s, _)) => shown.partition_point(|o| o.invoke_time < s),
            None => 0,
        };
        let from = centre
            .saturating_sub(MAX_OPS / 2)
            .min(shown.len() - MAX_OPS);
        shown = shown[from..from + MAX_OPS].to_vec();
    }
    (shown, total)
}

/// Where things go on the timeline: x of a time (crashed operations run
/// to `crashed_end`), and a row per process in process order.
struct Layout {
    t0: u64,
    crashed_end: u64,
    rows: BTreeMap<u64, usize>,
}

impl Layout {
    fn new(shown: &[&Operation], m: &Marks) -> Layout {
        let t0 = shown.iter().map(|o| o.invoke_time).min().unwrap_or(0);
        let t1 = shown
            .iter()
            .map(|o| o.complete_time.unwrap_or(o.invoke_time))
            .max()
            .unwrap_or(t0)
            .max(m.window.map(|w| w.1).unwrap_or(0))
            .max(t0 + 1);
        let mut rows: BTreeMap<u64, usize> = BTreeMap::new();
        for o in shown {
            let n = rows.len();
            rows.entry(o.process).or_insert(n);
        }
        // Re-number rows in process order.
        for (i, v) in rows.values_mut().enumerate() {
            *v = i;
        }
        Layout {
            t0,
            crashed_end: t1 + (t1 - t0) / 50 + 1,
            rows,
        }
    }

    fn x(&self, t: u64) -> f64 {
        LEFT + (t.saturating_sub(self.t0)) as f64 / (self.crashed_end - self.t0) as f64
            * (WIDTH - LEFT - 10.0)
    }
}

/// The timeline: the failing window, a row per process, a bar per
/// operation.
fn timeline_svg(shown: &[&Operation], m: &Marks) -> String {
    let layout = Layout::new(shown, m);
    let height = layout.rows.len() as f64 * ROW + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}">"#
    );
    if let Some((s, e)) = m.window {
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="0" width="{:.1}" height="{height}" fill="#fff3b0"><title>failing window</title></rect>"##,
            layout.x(s),
            (layout.x(e) - layout.x(s)).max(2.0)
        );
    }
    for (p, row) in &layout.rows {
        let y = *row as f64 * ROW + 20.0;
        let _ = write!(
            svg,
            r##"<text x="4" y="{:.1}" class="p">p{p}</text><line x1="{LEFT}" x2="{WIDTH}" y1="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
            y + 14.0,
            y + ROW,
            y + ROW
        );
    }
    for o in shown {
        operation_bar(&mut svg, o, m, &layout);
    }
    svg.push_str("</svg>");
    svg
}

/// One operation's bar, coloured by its part in the failure or its outcome.
fn operation_bar(svg: &mut String, o: &Operation, m: &Marks, layout: &Layout) {
    let y = layout.rows[&o.process] as f64 * ROW + 22.0;
    let x0 = layout.x(o.invoke_time);
    let x1 = layout
        .x(o.complete_time.unwrap_or(layout.crashed_end))
        .max(x0 + 3.0);
    let class = if m.failing.contains(&o.id) {
        "failing"
    } else if m.concurrent.contains(&o.id) {
        "concurrent"
    } else if m.prefix.contains(&o.id) {
        "prefix"
    } else {
        match o.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    };
    let label = match (&o.outcome, &o.output) {
        (Outcome::Ok, Some(v)) if o.input.is_null() => format!("{} {}", o.f, v),
        _ => format!("{} {}", o.f, o.input),
    };
    let _ = write!(
        svg,
        r#"<g class="{class}"><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="3"/><text x="{:.1}" y="{:.1}">{}</text><title>{}</title></g>"#,
        x1 - x0,
        ROW - 6.0,
        x0 + 3.0,
        y + 12.0,
        esc(&label
            .chars()
            .take(((x1 - x0) / 6.5) as usize)
            .collect::<String>()),
        esc(&o.to_string())
    );
}

/// A table row per checker: name, verdict, summary.
fn result_rows(report: &Report) -> String {
    let mut results = String::new();
    for r in &report.results {
        let _ = write!(
            results,
            "<tr><td>{}</td><td class=\"v-{}\">{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.verdict.kind(),
            r.verdict.kind(),
            esc(&r.summary)
        );
    }
    results
}

/// The witness of each invalid verdict and the reason of each unknown one.
fn witness_details(report: &Report) -> String {
    let mut details = String::new();
    for r in &report.results {
        match &r.verdict {
            Verdict::Invalid { witness } => {
                let _ = write!(
                    details,
                    "<h3>{}</h3><pre>{}</pre>",
                    esc(&r.name),
                    esc(&witness.to_string())
                );
            }
            Verdict::Unknown { reason } => {
                let _ = write!(
                    details,
                    "<h3>{}</h3><pre>unknown: {}</pre>",
                    esc(&r.name),
                    esc(reason)
                );
            }
            Verdict::Valid => {}
        }
    }
    details
}

/// Says so when the timeline shows fewer operations than there are.
fn cut_note(shown: usize, total: usize, m: &Marks) -> String {
    if shown >= total {
        return String::new();
    }
    format!(
        "<p>Showing {} of {} operations{}.</p>",
        shown,
        total,
        if m.window.is_some() {
            ", around the failing window"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;
    use crate::linearizable::check_linearizable;
    use crate::testutil::op;
    use crate::{CheckOptions, CheckerResult, ModelKind};

    #[test]
    fn draws_the_failing_operation_highlighted() {
        // write 1 completes, then a read sees 2: not linearizable.
        let ops = Operations {
            ops: vec![
                op(0, "write", 1, Some(1.into()), 0, Some(1)),
                op(1, "read", Value::Null, Some(2.into()), 2, Some(3)),
            ],
            source_name: "t".into(),
            event_count: 4,
            end_time: 3_000_000,
            ..Operations::default()
        };
        let r =
            check_linearizable(&ops, ModelKind::Register, &CheckOptions::default()).expect("fits");
        assert!(r.verdict.is_invalid());
        let report = Report::new(vec![CheckerResult {
            name: "linearizable".into(),
            verdict: r.verdict,
            summary: "s <b>".into(),
            details: Value::Null,
        }]);
        let page = render("h<1>.jsonl", &ops, &report);
        assert!(
            page.contains(r#"<g class="failing">"#),
            "the read is the failing op"
        );
        assert!(page.contains("failing window"));
        assert!(
            page.contains("h&lt;1&gt;.jsonl") && !page.contains("<b>"),
            "text is escaped"
        );
        assert!(!page.contains("<script"), "self-contained, no scripts");
    }
}
