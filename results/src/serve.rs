//! The web UI: the runs of a store, each run's report, its files.
//!
//! - `/`: the runs, filtered (`?test=`, `?verdict=`) and sorted
//!   (`?sort=date|test|verdict|ops|p99`, `&order=asc|desc`) on the server,
//!   so it works with no script.
//! - `/runs/<test>/<id>/`: the run's report.html, built on first request
//!   (and rebuilt when results.json or the history is newer).
//! - `/runs/<test>/<id>/files`: the run's files, to download.
//! - `/runs/<test>/<id>/<path>`: one file of the run (`?download=1` to save).
//! - `/api/runs`: the listing as JSON.
//!
//! Guarantees: only files inside the store's run directories are served;
//! a path with `..`, a hidden part, a backslash or a symlink leading out of
//! the run is refused (404), never read. Listing and building never panic
//! on a bad run: the page says what is wrong.

use crate::listing::{list_runs, RunEntry};
use crate::report::{self, REPORT_FILE};
use crate::store::{HISTORY_FILE, RESULTS_FILE};
use crate::timeline::escape;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

struct AppState {
    store: PathBuf,
    /// One report build at a time (they share temporary file names).
    building: std::sync::Mutex<()>,
}

/// The web UI's routes over `store`.
pub fn router(store: PathBuf) -> Router {
    let state = Arc::new(AppState {
        store,
        building: std::sync::Mutex::new(()),
    });
    Router::new()
        .route("/", get(index))
        .route("/api/runs", get(api_runs))
        .route("/runs/{test}/{id}", get(redirect_slash))
        .route("/runs/{test}/{id}/", get(run_report))
        .route("/runs/{test}/{id}/files", get(run_files))
        .route("/runs/{test}/{id}/{*path}", get(run_file))
        .with_state(state)
}

/// Serves until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, store: PathBuf) -> std::io::Result<()> {
    axum::serve(listener, router(store)).await
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(page(
            "not found",
            &format!("<p>{}</p><p><a href=\"/\">all runs</a></p>", escape(what)),
        )),
    )
        .into_response()
}

/// A single safe path component: no `..`, not hidden, no separators.
fn safe_component(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && !s.contains(['/', '\\', '\0'])
}

/// A relative path of safe components.
fn safe_relative(s: &str) -> Option<PathBuf> {
    let p = Path::new(s);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) if safe_component(&n.to_string_lossy()) => out.push(n),
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty() && !s.contains('\\')).then_some(out)
}

/// The run directory for a URL's test and id, if it is one.
fn run_dir(state: &AppState, test: &str, id: &str) -> Option<PathBuf> {
    if !safe_component(test) || !safe_component(id) || test == crate::store::LATEST_LINK {
        return None;
    }
    let dir = state.store.join(test).join(id);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && dir.join(HISTORY_FILE).is_file()).then_some(dir)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{}</title><style>{}</style></head><body>{body}</body></html>",
        escape(title),
        INDEX_STYLE
    )
}

const INDEX_STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1300px;padding:0 16px 40px;color:#1f2937}
h1{font-size:22px} table{border-collapse:collapse;font-size:14px;width:100%} th,td{border-bottom:1px solid #e5e7eb;padding:5px 8px;text-align:left}
th a{color:inherit} td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:1px 8px;border-radius:4px;font-weight:600;color:#fff;font-size:12px;text-transform:uppercase}
.verdict.valid{background:#16a34a}.verdict.invalid{background:#dc2626}.verdict.unknown{background:#d97706}.verdict.unchecked{background:#6b7280}
form{margin:10px 0;font-size:14px} form *{margin-right:8px}
"#;

#[derive(Debug, Default, Deserialize)]
struct IndexQuery {
    test: Option<String>,
    verdict: Option<String>,
    sort: Option<String>,
    order: Option<String>,
}

/// Filters and sorts a listing as the index page does.
fn select(mut runs: Vec<RunEntry>, q: &IndexQuery) -> Vec<RunEntry> {
    if let Some(t) = q.test.as_deref().filter(|t| !t.is_empty()) {
        runs.retain(|r| r.test.contains(t));
    }
    if let Some(v) = q
        .verdict
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "any")
    {
        runs.retain(|r| r.verdict_str() == v);
    }
    let sort = q.sort.as_deref().unwrap_or("date");
    let rank = |r: &RunEntry| match r.verdict_str() {
        "invalid" => 0,
        "unknown" => 1,
        "unchecked" => 2,
        _ => 3,
    };
    runs.sort_by(|a, b| {
        let o = match sort {
            "test" => a.test.cmp(&b.test).then(a.started.cmp(&b.started)),
            "verdict" => rank(a).cmp(&rank(b)).then(a.started.cmp(&b.started)),
            "ops" => a.ops.cmp(&b.ops),
            "p99" => a
                .latency_ms_p99
                .unwrap_or(-1.0)
                .total_cmp(&b.latency_ms_p99.unwrap_or(-1.0)),
            _ => a.started.cmp(&b.started).then(a.id.cmp(&b.id)),
        };
        o.then(a.test.cmp(&b.test))
    });
    let default_desc = matches!(sort, "date" | "ops" | "p99");
    let desc = match q.order.as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => default_desc,
    };
    if desc {
        runs.reverse();
    }
    runs
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The store's runs; none while the store folder does not exist yet (the
/// first `faultline test` makes it).
fn runs_or_none(store: &Path) -> Result<Vec<RunEntry>, crate::run_metrics::RunReadError> {
    if !store.exists() {
        return Ok(Vec::new());
    }
    list_runs(store)
}

async fn index(State(state): State<Arc<AppState>>, Query(q): Query<IndexQuery>) -> Response {
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || runs_or_none(&store)).await;
    let runs = match listed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page("error", &format!("<p>{}</p>", escape(&e.to_string())))),
            )
                .into_response()
        }
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let total = runs.len();
    let mut tests: Vec<String> = runs.iter().map(|r| r.test.clone()).collect();
    tests.sort();
    tests.dedup();
    let shown = select(runs, &q);
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>faultline runs</h1><p>{} of {total} runs in <code>{}</code></p>",
        shown.len(),
        escape(&state.store.display().to_string())
    );
    if total == 0 {
        b.push_str(
            "<p id=no-runs>No runs yet: <code>faultline test</code> stores its runs here.</p>",
        );
    }
    let cur_test = q.test.clone().unwrap_or_default();
    let cur_verdict = q.verdict.clone().unwrap_or_default();
    b.push_str("<form method=get action=\"/\" id=filter><label>test <select name=test><option value=\"\">any</option>");
    for t in &tests {
        let sel = if *t == cur_test { " selected" } else { "" };
        let _ = write!(b, "<option{sel}>{}</option>", escape(t));
    }
    b.push_str("</select></label><label>verdict <select name=verdict>");
    for v in ["any", "valid", "invalid", "unknown", "unchecked"] {
        let sel = if v == cur_verdict { " selected" } else { "" };
        let _ = write!(b, "<option{sel}>{v}</option>");
    }
    b.push_str("</select></label>");
    if let Some(s) = &q.sort {
        let _ = write!(b, "<input type=hidden name=sort value=\"{}\">", escape(s));
    }
    b.push_str("<button type=submit>filter</button><a href=\"/\">clear</a></form>");
    let sort_link = |key: &str, label: &str| {
        let cur = q.sort.as_deref().unwrap_or("date");
        let desc_now = match q.order.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => matches!(cur, "date" | "ops" | "p99"),
        };
        let order = if cur == key && desc_now {
            "asc"
        } else if cur == key {
            "desc"
        } else {
            ""
        };
        let mut href = format!(
            "/?sort={key}&test={}&verdict={}",
            url_encode(&cur_test),
            url_encode(&cur_verdict)
        );
        if !order.is_empty() {
            href.push_str(&format!("&order={order}"));
        }
        let arrow = if cur == key {
            if desc_now {
                " ▼"
            } else {
                " ▲"
            }
        } else {
            ""
        };
        format!(
            "<th><a class=sort href=\"{}\">{label}{arrow}</a></th>",
            escape(&href)
        )
    };
    b.push_str("<table id=runs><tr>");
    for (k, l) in [
        ("test", "test"),
        ("date", "started"),
        ("verdict", "verdict"),
        ("ops", "ops"),
        ("p99", "p99 ms"),
    ] {
        b.push_str(&sort_link(k, l));
    }
    b.push_str("<th>run</th><th>files</th></tr>");
    for r in &shown {
        let base = format!("/runs/{}/{}/", url_encode(&r.test), url_encode(&r.id));
        let _ = write!(
            b,
            "<tr class=run data-test=\"{t}\" data-verdict=\"{v}\"><td>{t}</td><td>{s}</td><td><span class=\"verdict {v}\">{v}</span></td><td class=n>{ops}</td><td class=n>{p99}</td><td><a class=report href=\"{base}\">{id}</a></td><td><a href=\"{base}files\">files</a></td></tr>",
            t = escape(&r.test),
            s = escape(&r.started),
            v = r.verdict_str(),
            ops = r.ops.map_or("-".into(), |o| o.to_string()),
            p99 = r.latency_ms_p99.map_or("-".into(), |p| format!("{p:.1}")),
            id = escape(&r.id),
        );
    }
    b.push_str("</table>");
    Html(page("faultline runs", &b)).into_response()
}

async fn api_runs(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || runs_or_none(&store)).await {
        Ok(Ok(runs)) => axum::Json(runs).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn redirect_slash(UrlPath((test, id)): UrlPath<(String, String)>) -> Response {
    let to = format!("/runs/{}/{}/", url_encode(&test), url_encode(&id));
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, to)]).into_response()
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Is report.html missing or older than what it is built from?
fn report_stale(dir: &Path) -> bool {
    let Some(r) = modified(&dir.join(REPORT_FILE)) else {
        return true;
    };
    [HISTORY_FILE, RESULTS_FILE]
        .iter()
        .filter_map(|f| modified(&dir.join(f)))
        .any(|t| t > r)
}

async fn run_report(
    State(state): State<Arc<AppState>>,
    UrlPath((test, id)): UrlPath<(String, String)>,
) -> Response {
    let Some(dir) = run_dir(&state, &test, &id) else {
        return not_found("no such run");
    };
    let st = state.clone();
    let built = tokio::task::spawn_blocking(move || {
        let _guard = st.building.lock().unwrap_or_else(|e| e.into_inner());
        if report_stale(&dir) {
            report::build(&dir).map(|_| ())?;
        }
        std::fs::read_to_string(dir.join(REPORT_FILE)).map_err(|source| {
            crate::run_metrics::RunReadError::Io {
                path: dir.join(REPORT_FILE),
                source,
            }
        })
    })
    .await;
    match built {
        Ok(Ok(html)) => Html(html).into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(page(
                "report failed",
                &format!(
                    "<h1>cannot build the report</h1><p>{}</p><p><a href=\"files\">files</a></p>",
                    escape(&e.to_string())
                ),
            )),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Every regular file of a run, relative, sorted (symlinks are skipped).
fn files_of(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let r = rel.join(&name);
            if ft.is_dir() {
                stack.push(r);
            } else if ft.is_file() {
                out.push((
                    r.to_string_lossy().into_owned(),
                    e.metadata().map_or(0, |m| m.len()),
                ));
            }
        }
    }
    out.sort();
    out
}

async fn run_files(
    State(state): State<Arc<AppState>>,
    UrlPath((test, id)): UrlPath<(String, String)>,
) -> Response {
    let Some(dir) = run_dir(&state, &test, &id) else {
        return not_found("no such run");
    };
    let files = tokio::task::spawn_blocking(move || files_of(&dir))
        .await
        .unwrap_or_default();
    let mut b = format!(
        "<h1>{} {}</h1><p><a href=\"./\">report</a> · <a href=\"/\">all runs</a></p><table id=files><tr><th>file</th><th>bytes</th><th></th></tr>",
        escape(&test),
        escape(&id)
    );
    for (f, size) in files {
        let href: String = f.split('/').map(url_encode).collect::<Vec<_>>().join("/");
        let _ = write!(
            b,
            "<tr><td><a href=\"{href}\">{}</a></td><td class=n>{size}</td><td><a href=\"{href}?download=1\">download</a></td></tr>",
            escape(&f)
        );
    }
    b.push_str("</table>");
    Html(page(&format!("{test} {id} files"), &b)).into_response()
}

#[derive(Debug, Default, Deserialize)]
struct FileQuery {
    download: Option<String>,
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "csv" => "text/csv; charset=utf-8",
        "jsonl" | "log" | "hlog" | "txt" | "edn" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn run_file(
    State(state): State<Arc<AppState>>,
    UrlPath((test, id, path)): UrlPath<(String, String, String)>,
    Query(q): Query<FileQuery>,
) -> Response {
    let Some(dir) = run_dir(&state, &test, &id) else {
        return not_found("no such run");
    };
    let Some(rel) = safe_relative(&path) else {
        return not_found("no such file");
    };
    let file = dir.join(&rel);
    // Symlinks inside the run must not lead out of it.
    let (Ok(canon_dir), Ok(canon_file)) =
        (std::fs::canonicalize(&dir), std::fs::canonicalize(&file))
    else {
        return not_found("no such file");
    };
    if !canon_file.starts_with(&canon_dir) || !canon_file.is_file() {
        return not_found("no such file");
    }
    let bytes = match tokio::fs::read(&canon_file).await {
        Ok(b) => b,
        Err(_) => return not_found("no such file"),
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&rel)),
    );
    if q.download.is_some() {
        let name: String = rel
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                    .collect()
            })
            .unwrap_or_else(|| "file".into());
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_with_dots_or_hidden_parts_are_refused() {
        assert_eq!(
            safe_relative("nodes/n1.log"),
            Some(PathBuf::from("nodes/n1.log"))
        );
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            ".hidden",
            "a/.b",
            "",
            "a\\..\\b",
            "./x",
        ] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
        assert!(!safe_component(".."));
        assert!(!safe_component("a/b"));
    }

    fn entry(test: &str, started: &str, verdict: Option<crate::VerdictKind>, p99: f64) -> RunEntry {
        RunEntry {
            test: test.into(),
            id: started.into(),
            path: PathBuf::new(),
            started: started.into(),
            verdict,
            ops: Some(1),
            latency_ms_p99: Some(p99),
            duration_s: None,
            workload: None,
            has_report: false,
        }
    }

    #[test]
    fn filters_and_sorts_like_the_page_says() {
        use crate::VerdictKind::*;
        let runs = vec![
            entry("kv", "2026-01-02", Some(Valid), 5.0),
            entry("register", "2026-01-03", Some(Invalid), 1.0),
            entry("kv", "2026-01-01", None, 9.0),
        ];
        let ids = |v: Vec<RunEntry>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(select(runs.clone(), &IndexQuery::default())),
            ["2026-01-03", "2026-01-02", "2026-01-01"]
        );
        let q = |test: &str, verdict: &str, sort: &str, order: &str| IndexQuery {
            test: Some(test.into()),
            verdict: Some(verdict.into()),
            sort: Some(sort.into()),
            order: (!order.is_empty()).then(|| order.into()),
        };
        assert_eq!(
            ids(select(runs.clone(), &q("kv", "", "date", "asc"))),
            ["2026-01-01", "2026-01-02"]
        );
        assert_eq!(
            ids(select(runs.clone(), &q("", "unchecked", "", ""))),
            ["2026-01-01"]
        );
        assert_eq!(
            ids(select(runs.clone(), &q("", "any", "verdict", ""))),
            ["2026-01-03", "2026-01-01", "2026-01-02"]
        );
        assert_eq!(
            ids(select(runs, &q("", "", "p99", ""))),
            ["2026-01-01", "2026-01-02", "2026-01-03"]
        );
    }
}
