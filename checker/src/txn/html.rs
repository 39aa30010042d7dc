//! A self-contained HTML page of a transactional check: the verdict, the
//! models ruled out, and each anomaly found; every cycle drawn as a ring
//! of transactions with labelled arrows (inline SVG, no scripts), beside
//! its step-by-step explanation.

use super::anomaly::Case;
use super::TxnWitness;
use crate::verdict::{CheckerResult, Verdict, Witness};
use std::f64::consts::PI;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(rel: &str) -> &'static str {
    match rel {
        "ww" => "#c0392b",
        "wr" => "#2471a3",
        "rw" => "#d68910",
        "process" => "#7d3c98",
        _ => "#1e8449",
    }
}

/// The SVG of one cycle.
pub fn cycle_svg(case: &Case) -> String {
    let n = case.steps.len().max(1);
    let size = 220.0 + 40.0 * n.min(12) as f64;
    let (cx, cy, r) = (size / 2.0, size / 2.0, size / 2.0 - 60.0);
    let at = |i: usize| {
        let a = -PI / 2.0 + 2.0 * PI * i as f64 / n as f64;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size:.0}" height="{size:.0}" viewBox="0 0 {size:.0} {size:.0}">
<defs>"#
    );
    for rel in ["ww", "wr", "rw", "process", "realtime"] {
        let _ = write!(
            s,
            r#"<marker id="arrow-{rel}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker>"#,
            colour(rel)
        );
    }
    s.push_str("</defs>\n");
    for (i, step) in case.steps.iter().enumerate() {
        let (x1, y1) = at(i);
        let (x2, y2) = at((i + 1) % n);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        // Shorten to the circles' edges, bow outwards a little.
        let (sx, sy, ex, ey) = (
            x1 + ux * 24.0,
            y1 + uy * 24.0,
            x2 - ux * 24.0,
            y2 - uy * 24.0,
        );
        let (mx, my) = ((sx + ex) / 2.0 + uy * 18.0, (sy + ey) / 2.0 - ux * 18.0);
        let c = colour(step.rel);
        let _ = writeln!(
            s,
            r#"<path d="M{sx:.1},{sy:.1} Q{mx:.1},{my:.1} {ex:.1},{ey:.1}" fill="none" stroke="{c}" stroke-width="2" marker-end="url(#arrow-{})"><title>{}</title></path><text x="{:.1}" y="{:.1}" font-size="13" fill="{c}" text-anchor="middle">{}</text>"#,
            step.rel,
            esc(&step.why),
            mx + uy * 8.0,
            my - ux * 8.0 + 4.0,
            step.rel
        );
    }
    for (i, t) in case.txns.iter().enumerate().take(n) {
        let (x, y) = at(i);
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="22" fill="#fdfefe" stroke="#34495e" stroke-width="2"><title>{}</title></circle><text x="{x:.1}" y="{:.1}" font-size="14" text-anchor="middle" font-weight="bold">T{}</text>"##,
            esc(t),
            y + 5.0,
            i + 1
        );
    }
    s.push_str("</svg>");
    s
}

/// The page for one file's transactional result.
pub fn render(name: &str, result: &CheckerResult) -> String {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{}</h1><p class=summary><b>{}</b> — {}</p>",
        esc(name),
        result.verdict.kind(),
        esc(&result.summary)
    );
    match &result.verdict {
        Verdict::Valid => {
            body.push_str("<p>No anomaly the requested consistency models prohibit.</p>")
        }
        Verdict::Unknown { reason } => {
            let _ = writeln!(body, "<p>Unknown: {}</p>", esc(reason));
        }
        Verdict::Invalid {
            witness: Witness::Txn(w),
        } => witness_html(&mut body, w),
        Verdict::Invalid { witness } => {
            let _ = writeln!(body, "<pre>{}</pre>", esc(&witness.to_string()));
        }
    }
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{} — faultline</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1c2833; }}
.case {{ display: flex; gap: 2em; align-items: flex-start; border-top: 1px solid #d5d8dc; padding: 1em 0; }}
pre {{ white-space: pre-wrap; font-size: 13px; }}
.legend span {{ margin-right: 1.5em; font-weight: bold; }}
</style></head><body>
{}
</body></html>
"#,
        esc(name),
        body
    )
}

fn witness_html(body: &mut String, w: &TxnWitness) {
    let _ = writeln!(
        body,
        "<p>Not {} ({}). Anomalies: <b>{}</b>.</p><p>Rules out: <b>{}</b>{}</p>",
        esc(&w.consistency_models.join(", ")),
        w.model,
        esc(&w.anomaly_types.join(", ")),
        esc(&w.not.join(", ")),
        if w.also_not.is_empty() {
            String::new()
        } else {
            format!("; and also {}", esc(&w.also_not.join(", ")))
        }
    );
    body.push_str("<p class=legend>");
    for rel in ["ww", "wr", "rw", "process", "realtime"] {
        let _ = write!(body, r#"<span style="color:{}">{rel}</span>"#, colour(rel));
    }
    body.push_str("</p>");
    for (name, cases) in &w.anomalies.types {
        let _ = writeln!(
            body,
            "<h2>{} — {} case{}</h2>",
            esc(name),
            cases.count,
            if cases.count == 1 { "" } else { "s" }
        );
        for case in &cases.examples {
            body.push_str("<div class=case>");
            if !case.steps.is_empty() {
                body.push_str(&cycle_svg(case));
            }
            let _ = writeln!(
                body,
                "<div><pre>{}</pre><pre>{}</pre></div></div>",
                esc(&case.txns.join("\n")),
                esc(&case.explanation)
            );
        }
    }
    for i in &w.incomplete {
        let _ = writeln!(body, "<p>Not fully searched: {}</p>", esc(i));
    }
}
