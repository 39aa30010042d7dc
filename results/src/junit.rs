//! JUnit XML for a suite, the format CI systems render (Jenkins, GitLab,
//! GitHub test reporters): one `<testcase>` per run; an invalid or unknown
//! verdict is a `<failure>` whose message holds the verdict and the report's
//! path; a crash or bad input is an `<error>` with the end of its stderr.

use crate::suite::CaseResult;
use std::fmt::Write;

/// Escapes text for XML, dropping characters XML 1.0 cannot hold.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit document of a suite's results. `timestamp` is RFC 3339.
pub fn junit_xml(suite: &str, timestamp: &str, results: &[CaseResult]) -> String {
    let failures = results
        .iter()
        .filter(|r| matches!(r.exit_code, 1 | 2))
        .count();
    let errors = results
        .iter()
        .filter(|r| !matches!(r.exit_code, 0..=2))
        .count();
    let time: f64 = results.iter().map(|r| r.duration_s).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        r#"<testsuites name="{n}" tests="{t}" failures="{failures}" errors="{errors}" time="{time:.3}">"#,
        n = xml_escape(suite),
        t = results.len()
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="{n}" tests="{t}" failures="{failures}" errors="{errors}" skipped="0" time="{time:.3}" timestamp="{ts}">"#,
        n = xml_escape(suite),
        t = results.len(),
        ts = xml_escape(timestamp)
    );
    for r in results {
        let _ = write!(
            o,
            r#"    <testcase classname="faultline.{s}.{test}" name="{label}" time="{t:.3}">"#,
            s = xml_escape(suite),
            test = xml_escape(&r.case.test),
            label = xml_escape(&r.case.label()),
            t = r.duration_s
        );
        let where_ = r.report.as_ref().or(r.run_dir.as_ref()).map_or_else(
            || "no run directory".to_string(),
            |p| p.display().to_string(),
        );
        match r.exit_code {
            0 => {}
            1 | 2 => {
                let verdict = if r.exit_code == 1 {
                    "invalid"
                } else {
                    "unknown"
                };
                let _ = write!(
                    o,
                    "\n      <failure type=\"{verdict}\" message=\"{}\">{}</failure>",
                    xml_escape(&format!("{verdict}; report: {where_}")),
                    xml_escape(&format!(
                        "verdict: {verdict}\nreport: {where_}\nfaultline test {}\n{}",
                        r.case.args.join(" "),
                        r.message
                    ))
                );
            }
            code => {
                let _ = write!(
                    o,
                    "\n      <error type=\"{}\" message=\"{}\">{}</error>",
                    if code == 254 {
                        "bad-input"
                    } else {
                        "harness-failure"
                    },
                    xml_escape(&format!("exit {code} ({}); run: {where_}", r.outcome())),
                    xml_escape(&format!(
                        "faultline test {}\n{}",
                        r.case.args.join(" "),
                        r.message
                    ))
                );
            }
        }
        let _ = write!(
            o,
            "\n      <system-out>{}</system-out>\n    </testcase>\n",
            xml_escape(&format!(
                "run: {}\nreport: {}",
                r.run_dir
                    .as_ref()
                    .map_or("-".into(), |p| p.display().to_string()),
                where_
            ))
        );
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{CaseResult, SuiteSpec};
    use std::path::Path;

    fn results() -> Vec<CaseResult> {
        let cases = SuiteSpec::parse(
            Path::new("s"),
            "workloads=[\"register\",\"kv\",\"lock\",\"set\"]\nrepeats=1",
        )
        .expect("parse")
        .cases();
        cases
            .into_iter()
            .zip([0u8, 1, 255, 2])
            .map(|(case, code)| CaseResult {
                case,
                exit_code: code,
                verdict: None,
                run_dir: (code != 255).then(|| "store/x/1".into()),
                report: (code != 255).then(|| "store/x/1/report.html".into()),
                duration_s: 1.5,
                message: if code == 255 {
                    "error: node <n1> crashed & \u{1b}[31mred\u{1b}[0m".into()
                } else {
                    String::new()
                },
            })
            .collect()
    }

    #[test]
    fn validates_as_xml_with_one_testcase_per_run() {
        let xml = junit_xml("night<ly>", "2026-01-01T00:00:00Z", &results());
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("name"), Some("night<ly>"));
        assert_eq!(
            (
                root.attribute("tests"),
                root.attribute("failures"),
                root.attribute("errors")
            ),
            (Some("4"), Some("2"), Some("1"))
        );
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].attribute("name"), Some("register-none#1"));
        assert!(cases[0]
            .children()
            .all(|c| !c.has_tag_name("failure") && !c.has_tag_name("error")));
        let failure = cases[1]
            .children()
            .find(|c| c.has_tag_name("failure"))
            .expect("failure");
        assert_eq!(
            failure.attribute("message"),
            Some("invalid; report: store/x/1/report.html")
        );
        let error = cases[2]
            .children()
            .find(|c| c.has_tag_name("error"))
            .expect("error");
        assert_eq!(error.attribute("type"), Some("harness-failure"));
        assert!(error
            .text()
            .expect("text")
            .contains("node <n1> crashed & [31mred"));
        let unknown = cases[3]
            .children()
            .find(|c| c.has_tag_name("failure"))
            .expect("unknown is a failure");
        assert_eq!(unknown.attribute("type"), Some("unknown"));
    }
}
