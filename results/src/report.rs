//! `report.html`: one self-contained page per run.
//!
//! It holds the verdicts with their witnesses, the plots (inline SVG; PNG
//! copies in `plots/`), the timeline, for sharded runs the shard ownership
//! over time, the percentile table, the faults, the
//! test's options, and relative links to the history, the histogram logs
//! and the node logs. Everything it shows is inside the file (no script, no
//! style sheet, no image is fetched), so it opens from the file system with
//! no server. Building it also writes the run's histogram logs
//! (`latency.hlog`, `latency-total.hlog`, `throughput.csv`), so a report
//! and its numbers always come from the same history.
//!
//! Witnesses: each checker's summary and detail JSON are shown; an HTML
//! rendering of a witness that the checking step saved beside the history
//! as `witness*.html` (the checker's own `--html` visualisation) is embedded
//! as it is, in an isolated frame, and linked.

use crate::histogram_log::{LATENCY_LOG_FILE, LATENCY_TOTAL_FILE, THROUGHPUT_FILE};
use crate::op_span::OpOutcome;
use crate::plot::{hex, outcome_rgb, PlotData, PlotKind};
use crate::run_metrics::{outcome_rows, test_and_id, OpMetrics, RunData, RunReadError};
use crate::run_results::{RunResults, VerdictKind};
use crate::shard_timeline;
use crate::store::{RunDir, HARNESS_LOG_FILE, HISTORY_FILE, NODES_DIR, RESULTS_FILE, TEST_FILE};
use crate::timeline::{self, escape};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub const REPORT_FILE: &str = "report.html";
pub const PLOTS_DIR: &str = "plots";

/// What building a report did.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub operations: usize,
    pub elapsed: Duration,
    /// Problems that did not stop the report (no font for plots, …).
    pub warnings: Vec<String>,
}

/// Builds `report.html` (and the histogram logs and PNG plots) for a run.
pub fn build(run_path: &Path) -> Result<ReportSummary, RunReadError> {
    let t0 = Instant::now();
    let run = RunDir::open(run_path)?;
    let data = RunData::read(&run)?;
    let results = match RunResults::read(&run.results_json()) {
        Ok(r) => Some(r),
        Err(crate::StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
    let test = run.read_test_json().ok();
    let started = test
        .as_ref()
        .and_then(|t| t.get("started_at"))
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let started_sys = started.map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)));
    data.histograms.write(run.path(), started_sys)?;

    let mut warnings = Vec::new();
    let plot_data = PlotData {
        spans: &data.spans,
        faults: &data.faults,
        histograms: &data.histograms,
        duration_s: data.end_ns as f64 / 1e9,
    };
    let plots_dir = run.path().join(PLOTS_DIR);
    std::fs::create_dir_all(&plots_dir).map_err(|source| RunReadError::Io {
        path: plots_dir.clone(),
        source,
    })?;
    let mut plots: Vec<(PlotKind, Result<String, String>)> = Vec::new();
    for kind in PlotKind::ALL {
        let svg = crate::plot::svg(kind, &plot_data).map_err(|e| e.to_string());
        if svg.is_ok() {
            let png = plots_dir.join(format!("{}.png", kind.stem()));
            if let Err(e) = crate::plot::png(kind, &plot_data, &png) {
                warnings.push(format!("{}: {e}", png.display()));
            }
        } else if let Err(e) = &svg {
            warnings.push(e.clone());
        }
        plots.push((kind, svg));
    }
    let timeline = timeline::svg(&data.spans, &data.faults, data.end_ns);
    let (test_name, id) = test_and_id(run.path());
    let html = render(&Page {
        run: &run,
        test_name: &test_name,
        id: &id,
        started: started.map(|t| t.to_rfc3339()),
        data: &data,
        results: results.as_ref(),
        test: test.as_ref(),
        plots: &plots,
        timeline: &timeline,
    });
    let path = run.path().join(REPORT_FILE);
    crate::store::write_atomically(&path, html.as_bytes()).map_err(|source| RunReadError::Io {
        path: path.clone(),
        source,
    })?;
    for w in &warnings {
        tracing::warn!("report of {}: {w}", run.path().display());
    }
    Ok(ReportSummary {
        path,
        bytes: html.len() as u64,
        operations: data.spans.len(),
        elapsed: t0.elapsed(),
        warnings,
    })
}

struct Page<'a> {
    run: &'a RunDir,
    test_name: &'a str,
    id: &'a str,
    started: Option<String>,
    data: &'a RunData,
    results: Option<&'a RunResults>,
    test: Option<&'a serde_json::Value>,
    plots: &'a [(PlotKind, Result<String, String>)],
    timeline: &'a str,
}

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1480px;padding:0 16px 40px;color:#1f2937}
h1{font-size:22px;margin:18px 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#4b5563;font-size:13px} .meta span{margin-right:14px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600;color:#fff;text-transform:uppercase;font-size:13px}
.verdict.valid{background:#16a34a}.verdict.invalid{background:#dc2626}.verdict.unknown{background:#d97706}.verdict.none{background:#6b7280}
table{border-collapse:collapse;font-size:13px;margin:6px 0} th,td{border:1px solid #e5e7eb;padding:3px 8px;text-align:left}
th{background:#f9fafb} td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f9fafb;border:1px solid #e5e7eb;padding:8px;overflow:auto;max-height:420px;font-size:12px}
figure{margin:10px 0} figure svg{max-width:100%;height:auto;border:1px solid #f3f4f6}
figcaption{font-size:12px;color:#6b7280}
.timeline-wrap{overflow-x:auto;border:1px solid #f3f4f6}
.links a{margin-right:12px;font-size:13px}
iframe.witness{width:100%;height:520px;border:1px solid #e5e7eb}
.warn{color:#b45309;font-size:13px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
"#;

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

fn verdict_badge(v: Option<VerdictKind>, id: Option<&str>) -> String {
    let (cls, text) = v.map_or(("none", "not checked"), |v| (v.as_str(), v.as_str()));
    let id = id.map(|i| format!(r#" id="{i}""#)).unwrap_or_default();
    format!(r#"<span class="verdict {cls}"{id} data-verdict="{cls}">{text}</span>"#)
}

fn metrics_table(out: &mut String, rows: &[OpMetrics]) {
    out.push_str("<table class=\"percentiles\"><tr><th>op</th><th>outcome</th><th>count</th><th>per s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>");
    for r in rows {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=n>{:.1}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            escape(&r.f),
            r.outcome.map_or("all", OpOutcome::as_str),
            r.count,
            r.throughput_per_s,
            fmt_ms(r.latency_ms_p50),
            fmt_ms(r.latency_ms_p90),
            fmt_ms(r.latency_ms_p99),
            fmt_ms(r.latency_ms_p999),
            fmt_ms(r.latency_ms_max)
        );
    }
    out.push_str("</table>");
}

/// Relative links to the run's files that exist.
fn file_links(run: &RunDir) -> Vec<(String, String)> {
    let mut links = Vec::new();
    if run.harness_log().is_file() {
        links.push((
            HARNESS_LOG_FILE.to_string(),
            format!("harness log ({HARNESS_LOG_FILE})"),
        ));
    }
    for name in [
        HISTORY_FILE,
        TEST_FILE,
        RESULTS_FILE,
        LATENCY_TOTAL_FILE,
        LATENCY_LOG_FILE,
        THROUGHPUT_FILE,
    ] {
        if run.path().join(name).is_file() {
            links.push((name.to_string(), name.to_string()));
        }
    }
    let nodes = run.path().join(NODES_DIR);
    if let Ok(rd) = std::fs::read_dir(&nodes) {
        let mut logs: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        logs.sort();
        for l in logs {
            links.push((
                format!("{NODES_DIR}/{l}"),
                format!("node log {}", l.trim_end_matches(".log")),
            ));
        }
    }
    links
}

/// Witness renderings saved beside the history (`witness*.html`).
fn witness_files(run: &RunDir) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(run.path()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("witness") && n.ends_with(".html"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| Some((std::fs::read_to_string(run.path().join(&n)).ok()?, n)))
        .map(|(html, n)| (n, html))
        .collect()
}

/// The report page: a header, then one section after another.
fn render(p: &Page) -> String {
    let mut o = String::with_capacity(256 * 1024);
    header(&mut o, p);
    verdicts_section(&mut o, p);
    plots_section(&mut o, p);
    timeline_section(&mut o, p);
    shards_section(&mut o, p);
    percentiles_section(&mut o, p);
    faults_section(&mut o, p);
    impostor_section(&mut o, p);
    crate::report_audit::audit_section(&mut o, &p.data.audit);
    options_section(&mut o, p);
    footer(&mut o);
    o
}

/// The title, the verdict badge, the run's size and the file links.
fn header(o: &mut String, p: &Page) {
    let verdict = p.results.map(|r| r.verdict);
    let title = format!(
        "{} {} — {}",
        p.test_name,
        p.id,
        verdict.map_or("not checked", VerdictKind::as_str)
    );
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    let _ = write!(
        o,
        "<h1>{} <small>{}</small> {}</h1><div class=meta>",
        escape(p.test_name),
        escape(p.id),
        verdict_badge(verdict, Some("verdict"))
    );
    if let Some(s) = &p.started {
        let _ = write!(o, "<span>started {}</span>", escape(s));
    }
    let _ = write!(
        o,
        "<span>{:.1} s</span><span>{} operations</span><span>{} events</span><span>{} faults</span></div>",
        p.data.end_ns as f64 / 1e9,
        p.data.spans.len(),
        p.data.events,
        p.data.faults.len()
    );
    if p.data.truncated {
        o.push_str("<p class=warn>The history's last line was cut short (a crash?); the rest is shown.</p>");
    }
    o.push_str("<p class=links>");
    for (href, text) in file_links(p.run) {
        let _ = write!(o, r#"<a href="{}">{}</a>"#, escape(&href), escape(&text));
    }
    o.push_str("</p>");
}

/// The checkers' verdicts, their witnesses, and the witness renderings saved beside the history.
fn verdicts_section(o: &mut String, p: &Page) {
    o.push_str("<h2 id=verdicts>Verdicts</h2>");
    match p.results {
        None => o.push_str("<p>No results.json: this run was never checked (<code>faultline analyze</code> checks it).</p>"),
        Some(r) => {
            o.push_str("<table class=verdicts><tr><th>checker</th><th>scope</th><th>verdict</th><th>summary</th></tr>");
            for c in &r.checkers {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&c.checker),
                    escape(c.scope.as_deref().unwrap_or("all")),
                    verdict_badge(Some(c.verdict), None),
                    escape(&c.summary)
                );
            }
            o.push_str("</table>");
            for c in r.checkers.iter().filter(|c| c.verdict != VerdictKind::Valid && !c.detail.is_null()) {
                let detail = match &c.detail {
                    serde_json::Value::String(s) => s.clone(),
                    d => serde_json::to_string_pretty(d).expect("JSON values serialize"),
                };
                let _ = write!(
                    o,
                    "<details open class=witness><summary>witness: {} ({})</summary><pre>{}</pre></details>",
                    escape(&c.checker),
                    c.verdict.as_str(),
                    escape(&detail)
                );
            }
        }
    }
    for (name, html) in witness_files(p.run) {
        let _ = write!(
            o,
            r#"<h3>{n}</h3><p class=links><a href="{n}">open {n}</a></p><iframe class=witness sandbox="allow-scripts" title="{n}" srcdoc="{}"></iframe>"#,
            escape(&html),
            n = escape(&name)
        );
    }
}

/// Latency and throughput plots (SVG inline, PNG linked), with the outcome legend.
fn plots_section(o: &mut String, p: &Page) {
    o.push_str("<h2 id=plots>Plots</h2>");
    let legend: String = OpOutcome::ALL
        .iter()
        .map(|x| {
            format!(
                r#"<span style="background:{}"></span>{}"#,
                hex(outcome_rgb(*x)),
                x.as_str()
            )
        })
        .collect();
    let _ = write!(o, "<div class=legend>{legend} — shaded bands: faults</div>");
    for (kind, svg) in p.plots {
        let _ = write!(o, r#"<figure class=plot id="plot-{}">"#, kind.stem());
        match svg {
            Ok(svg) => {
                o.push_str(svg);
                let _ = write!(
                    o,
                    r#"<figcaption>{} — <a href="{PLOTS_DIR}/{}.png">PNG</a></figcaption>"#,
                    kind.title(),
                    kind.stem()
                );
            }
            Err(e) => {
                let _ = write!(
                    o,
                    "<p class=warn>{}: not drawn: {}</p>",
                    kind.title(),
                    escape(e)
                );
            }
        }
        o.push_str("</figure>");
    }
}

/// One row per process, bars from invoke to completion, fault bands.
fn timeline_section(o: &mut String, p: &Page) {
    o.push_str("<h2 id=timeline>Timeline</h2><p class=meta>One row per process; bars from invoke to completion, coloured by outcome (hatched: never completed); bands: faults. Hover for details.</p><div class=timeline-wrap>");
    o.push_str(p.timeline);
    o.push_str("</div>");
}

/// Who owned which shard over time (sharded runs only).
fn shards_section(o: &mut String, p: &Page) {
    let own = &p.data.ownership;
    if !own.is_empty() {
        let _ = write!(
            o,
            "<h2 id=shards>Shards</h2><p class=meta>{} shards; one row per shard, its replica set over time (one colour per set; dashed: a move that did not finish, so the ring's target, not confirmed); hatched: the shard moving during a membership change; markers: nodes added (+) and removed (-). {} membership changes, {} completed.</p><div class=timeline-wrap>",
            own.shards,
            own.changes.len(),
            own.changes.iter().filter(|c| c.completed()).count()
        );
        o.push_str(&shard_timeline::svg(own, p.data.end_ns));
        o.push_str("</div><h3>Placements</h3>");
        o.push_str(&shard_timeline::placements_table(own));
        if !own.changes.is_empty() {
            o.push_str("<h3>Membership changes</h3>");
            o.push_str(&shard_timeline::changes_table(own));
        }
    }
}

/// Latency percentiles per outcome.
fn percentiles_section(o: &mut String, p: &Page) {
    o.push_str("<h2 id=percentiles>Latency percentiles</h2>");
    metrics_table(
        o,
        &outcome_rows(&p.data.histograms, p.data.end_ns as f64 / 1e9),
    );
}

/// Every fault, when it started and ended, and whether it healed.
fn faults_section(o: &mut String, p: &Page) {
    let _ = write!(o, "<h2 id=faults>Faults</h2>");
    if p.data.faults.is_empty() {
        o.push_str("<p>No faults.</p>");
    } else {
        o.push_str("<table class=faults><tr><th>fault</th><th>detail</th><th>start s</th><th>end s</th><th>healed</th><th>error</th></tr>");
        for f in &p.data.faults {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=n>{:.3}</td><td class=n>{:.3}</td><td>{}</td><td>{}</td></tr>",
                escape(&f.fault),
                escape(&f.detail),
                f.start_ns as f64 / 1e9,
                f.end_ns as f64 / 1e9,
                if f.healed { "yes" } else { "no" },
                escape(f.error.as_deref().unwrap_or(""))
            );
        }
        o.push_str("</table>");
    }
}

/// The impostor's attempts and what the nodes did with them (the
/// `access` checker's evidence); nothing when the run had no impostor.
fn impostor_section(o: &mut String, p: &Page) {
    if p.data.impostor.is_empty() {
        return;
    }
    let total: u64 = p.data.impostor.iter().map(|r| r.count).sum();
    let _ = write!(
        o,
        "<h2 id=impostor>Impostor attempts</h2><p class=meta>{total} attempts to get into a node \
         without the right credential, grouped; accepted ones first (they fail the run).</p>"
    );
    o.push_str("<table class=impostor><tr><th>credential</th><th>ask</th><th>outcome</th><th>nodes</th><th>count</th><th>the node said</th></tr>");
    for row in &p.data.impostor {
        let nodes: Vec<&str> = row.nodes.iter().map(String::as_str).collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"outcome-{}\">{}</td><td>{}</td><td class=n>{}</td><td>{}</td></tr>",
            escape(&row.credential),
            escape(&row.ask),
            escape(&row.outcome),
            escape(&row.outcome),
            escape(&nodes.join(", ")),
            row.count,
            escape(&row.said)
        );
    }
    o.push_str("</table>");
}

/// The plan the run was made with, and test.json whole.
fn options_section(o: &mut String, p: &Page) {
    o.push_str("<h2 id=options>Options</h2>");
    match p.test {
        Some(t) => {
            if let Some(serde_json::Value::Object(plan)) = t.get("plan") {
                o.push_str("<table class=options>");
                for (k, v) in plan {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        v => v.to_string(),
                    };
                    let _ = write!(
                        o,
                        "<tr><th>{}</th><td>{}</td></tr>",
                        escape(k),
                        escape(&text)
                    );
                }
                o.push_str("</table>");
            }
            let _ = write!(
                o,
                "<details><summary>test.json</summary><pre>{}</pre></details>",
                escape(&serde_json::to_string_pretty(t).expect("JSON values serialize"))
            );
        }
        None => o.push_str("<p>No test.json.</p>"),
    }
}

/// Which faultline built the page, from which file.
fn footer(o: &mut String) {
    let _ = writeln!(
        o,
        "<p class=meta>Built by faultline {} from {}.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        escape(HISTORY_FILE)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_run::{write_run, RunSpec};

    #[test]
    fn builds_a_self_contained_report_with_every_section() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(
            root.path(),
            &RunSpec {
                ops: 2000,
                invalid: true,
                ..RunSpec::default()
            },
        );
        std::fs::write(
            run.join("witness-linearizable.html"),
            "<html><body><b id=w>cannot place p3 read</b></body></html>",
        )
        .expect("witness");
        let s = build(&run).expect("report");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert_eq!(s.bytes, html.len() as u64);
        for needle in [
            r#"id="verdict" data-verdict="invalid""#,
            "<h2 id=verdicts>",
            "read 3 after write 4",
            "witness: linearizable (invalid)",
            "srcdoc=\"&lt;html&gt;",
            "id=\"plot-latency-raw\"><svg",
            "id=\"plot-latency-quantiles\"><svg",
            "id=\"plot-throughput\"><svg",
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline""#,
            "<table class=\"percentiles\">",
            "p99.9 ms",
            ">partition<",
            r#"<a href="history.jsonl">"#,
            r#"<a href="nodes/n1.log">node log n1</a>"#,
            "<th>workload</th><td>register</td>",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        // Self-contained: nothing fetched from anywhere.
        for banned in ["<script src", "<link ", "http://", "https://", "<img "] {
            let found = html
                .replace("http://www.w3.org/2000/svg", "")
                .replace("http://www.w3.org/1999/xlink", "");
            assert!(
                !found.contains(banned),
                "report fetches something: {banned}"
            );
        }
        for kind in PlotKind::ALL {
            assert!(run
                .join(PLOTS_DIR)
                .join(format!("{}.png", kind.stem()))
                .is_file());
        }
        for f in [LATENCY_LOG_FILE, LATENCY_TOTAL_FILE, THROUGHPUT_FILE] {
            assert!(run.join(f).is_file(), "{f}");
        }
    }

    #[test]
    fn the_impostor_s_attempts_are_listed_accepted_first_and_absent_without_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(root.path(), &RunSpec::default());
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert!(!html.contains("id=impostor"), "no impostor, no section");

        let history = run.join(HISTORY_FILE);
        let text = std::fs::read_to_string(&history).expect("history");
        let last: serde_json::Value =
            serde_json::from_str(text.lines().last().expect("a line")).expect("json");
        let (index, time) = (
            last["index"].as_u64().expect("index"),
            last["time"].as_u64().expect("time"),
        );
        let mut more = text.clone();
        for (i, (credential, outcome)) in [("client", "refused"), ("node-1", "accepted")]
            .into_iter()
            .enumerate()
        {
            let event = serde_json::json!({
                "index": index + 1 + i as u64, "time": time + 1, "process": "nemesis",
                "type": "info", "f": "impostor",
                "value": {"node": "n2", "credential": credential, "ask": "hello",
                    "claims": "n3", "outcome": outcome, "code": "unauthorized"},
            });
            more.push_str(&format!("{event}\n"));
        }
        std::fs::write(&history, more).expect("write");
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        let section = html
            .split("<h2 id=impostor>")
            .nth(1)
            .expect("an impostor section");
        let accepted = section.find("node-1").expect("the accepted row");
        let refused = section.find("client").expect("the refused row");
        assert!(accepted < refused, "accepted rows come first");
        assert!(section.contains("hello as n3"), "{section}");
    }

    #[test]
    fn a_sharded_run_shows_who_owns_which_shard_over_time() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(
            root.path(),
            &RunSpec {
                ops: 200,
                ..RunSpec::default()
            },
        );
        let path = run.join(HISTORY_FILE);
        let text = std::fs::read_to_string(&path).expect("read");
        let events = crate::read_history(&path).expect("history").events;
        let (mut index, end) = (
            events.last().expect("events").index + 1,
            crate::op_span::history_end_ns(&events),
        );
        let mut extra = String::new();
        for (f, time, value) in [
            (
                "placement",
                0,
                serde_json::json!({"shards":2,"replicas":2,"members":["n1","n2","n3"],"placement":[["n1","n2"],["n2","n3"]]}),
            ),
            (
                "start-membership",
                end / 3,
                serde_json::json!({"action":"add","node":"n4","members":["n1","n2","n3","n4"],"placement":[["n1","n2"],["n4","n3"]],"moves":[{"shard":1,"before":["n2","n3"],"after":["n4","n3"]}],"mechanism":"admin"}),
            ),
            (
                "stop-membership",
                end / 2,
                serde_json::json!({"action":"add","node":"n4","members":["n1","n2","n3","n4"],"placement":[["n1","n2"],["n4","n3"]],"moves":[{"shard":1,"before":["n2","n3"],"after":["n4","n3"],"outcome":"done"}],"mechanism":"admin"}),
            ),
        ] {
            let e = serde_json::json!({"index":index,"time":time,"process":"nemesis","type":"info","f":f,"value":value});
            extra.push_str(&format!("{e}\n"));
            index += 1;
        }
        std::fs::write(&path, format!("{text}{extra}")).expect("write");
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        for needle in [
            "<h2 id=shards>Shards</h2>",
            "1 membership changes, 1 completed",
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="shards""#,
            "<table class=placements>",
            "s1 n2,n3 → n4,n3 done",
            ">membership add n4<",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        // An unsharded run has no such section.
        let plain = write_run(
            root.path(),
            &RunSpec {
                ops: 20,
                start_offset_s: 60,
                ..RunSpec::default()
            },
        );
        build(&plain).expect("report");
        let html = std::fs::read_to_string(plain.join(REPORT_FILE)).expect("read");
        assert!(!html.contains("id=shards"));
    }

    #[test]
    fn a_run_with_audit_events_has_an_audit_section_and_no_more_faults() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(
            root.path(),
            &RunSpec {
                ops: 100,
                ..RunSpec::default()
            },
        );
        build(&run).expect("report");
        let before = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert!(!before.contains("id=audit"), "no audit events, no section");
        let path = run.join(HISTORY_FILE);
        let text = std::fs::read_to_string(&path).expect("read");
        let events = crate::read_history(&path).expect("history").events;
        let last = events.last().expect("events");
        let summary = serde_json::json!({"node":"n1","file":"nodes/n1/audit.jsonl","entries":2,"recorded":2,"omitted":0,"by_outcome":{"ok":1,"unauthorized":1},"by_role":{"admin":1,"none":1}});
        let ok = serde_json::json!({"node":"n1","time_ms":1,"at_ns":2_000_000_000i64,"role":"admin","peer":"127.0.0.250:1","op":"status","outcome":"ok"});
        let refused = serde_json::json!({"node":"n1","time_ms":1,"role":"none","peer":"127.0.0.250:2","op":"read","outcome":"unauthorized","reason":"no token"});
        let mut extra = String::new();
        for (i, (f, value)) in [("audit-log", summary), ("audit", ok), ("audit", refused)]
            .into_iter()
            .enumerate()
        {
            let e = serde_json::json!({"index":last.index + 1 + i as u64,"time":last.time,"process":"nemesis","type":"info","f":f,"value":value});
            extra.push_str(&format!("{e}\n"));
        }
        std::fs::write(&path, format!("{text}{extra}")).expect("write");
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        for needle in [
            "<h2 id=audit>Audit</h2>",
            "<h3 id=\"audit-n1\">n1</h3><p class=meta>2 entries",
            "<td>unauthorized</td>",
            "<td class=n>2.000</td>",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
        let faults = |h: &str| {
            h.split("<span>")
                .find_map(|s| s.split_once(" faults</span>"))
                .map(|(n, _)| n.to_string())
        };
        assert_eq!(faults(&before).as_deref(), Some("2"), "partition and kill");
        assert_eq!(
            faults(&html),
            faults(&before),
            "audit events are not faults"
        );
    }

    #[test]
    fn a_run_never_checked_still_gets_a_report() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(
            root.path(),
            &RunSpec {
                ops: 50,
                results: false,
                ..RunSpec::default()
            },
        );
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert!(html.contains(r#"data-verdict="none""#));
        assert!(html.contains("never checked"));
    }

    #[test]
    fn links_the_harness_log_when_the_run_has_one() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(root.path(), &RunSpec::default());
        let link = r#"<a href="faultline.log">harness log (faultline.log)</a>"#;
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert!(!html.contains(link), "no log, no link");
        std::fs::write(run.join(HARNESS_LOG_FILE), "INFO faultline: started\n").expect("log");
        build(&run).expect("report");
        let html = std::fs::read_to_string(run.join(REPORT_FILE)).expect("read");
        assert!(html.contains(link), "the report links faultline.log");
    }

    #[test]
    fn a_bad_history_is_an_error_naming_the_line() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = write_run(
            root.path(),
            &RunSpec {
                ops: 5,
                ..RunSpec::default()
            },
        );
        let mut text = std::fs::read_to_string(run.join(HISTORY_FILE)).expect("read");
        text.insert_str(0, "{not json}\n");
        std::fs::write(run.join(HISTORY_FILE), text).expect("write");
        let err = build(&run).expect_err("bad history").to_string();
        assert!(err.contains("history.jsonl:1:"), "{err}");
    }
}
