//! report.html's Audit section: per node, its audit log's entries counted
//! by outcome and by role, and a table of them (admin ops and refusals),
//! cut at [`MAX_ROWS_PER_NODE`] with how many more there are. Everything
//! comes from the history's audit events ([`crate::audit`]).

use crate::audit::NodeAudit;
use crate::timeline::escape;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Entries shown per node; the rest are counted ("N more").
pub const MAX_ROWS_PER_NODE: usize = 50;

/// The Audit section; nothing when the history has no audit events.
pub fn audit_section(o: &mut String, nodes: &[NodeAudit]) {
    if nodes.is_empty() {
        return;
    }
    o.push_str("<h2 id=audit>Audit</h2><p class=meta>Each node's audit log (every admin op and every refused connection or request), from the history's <code>audit</code> events. Counts cover the node's whole file; the history keeps its first ok entries and its first other ones (docs/history-format.md). Time: seconds since the history started, from the node's wall clock.</p>");
    for n in nodes {
        node_audit(o, n);
    }
}

fn node_audit(o: &mut String, n: &NodeAudit) {
    let total: u64 = n.by_outcome().values().sum();
    let _ = write!(
        o,
        "<h3 id=\"audit-{id}\">{id}</h3><p class=meta>{total} entries",
        id = escape(&n.node)
    );
    if let Some(s) = &n.summary {
        let _ = write!(o, " in <a href=\"{f}\">{f}</a>", f = escape(&s.file));
        if s.dropped > 0 {
            let _ = write!(o, "; {} lost by the node (queue full)", s.dropped);
        }
        if s.unreadable > 0 {
            let _ = write!(o, "; {} unreadable lines skipped", s.unreadable);
        }
        if let Some(cut) = &s.cut {
            let _ = write!(
                o,
                "; <span class=warn>only its first {} of {} bytes were read</span>",
                cut.kept_bytes, cut.file_bytes
            );
        }
    }
    o.push_str("</p>");
    counts_table(o, "outcome", &n.by_outcome());
    counts_table(o, "role", &n.by_role());
    entries_table(o, n);
}

fn counts_table(o: &mut String, what: &str, counts: &BTreeMap<String, u64>) {
    let _ = write!(
        o,
        "<table class=\"audit-counts\" data-by=\"{what}\"><tr><th>{what}</th><th>entries</th></tr>"
    );
    for (k, v) in counts {
        let _ = write!(o, "<tr><td>{}</td><td class=n>{v}</td></tr>", escape(k));
    }
    o.push_str("</table>");
}

fn entries_table(o: &mut String, n: &NodeAudit) {
    o.push_str("<table class=audit><tr><th>time s</th><th>role</th><th>peer</th><th>op</th><th>arguments</th><th>outcome</th><th>reason</th></tr>");
    for e in n.entries.iter().take(MAX_ROWS_PER_NODE) {
        let time = e.at_ns.map_or_else(
            || format!("@{} ms", e.time_ms),
            |ns| format!("{:.3}", ns as f64 / 1e9),
        );
        let args = match (&e.args, e.args_bytes) {
            (Some(a), _) => a.to_string(),
            (None, Some(b)) => format!("({b} bytes)"),
            (None, None) => String::new(),
        };
        let _ = write!(
            o,
            "<tr><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&time),
            escape(&e.role),
            escape(&e.peer),
            escape(&e.op),
            escape(&args),
            escape(&e.outcome),
            escape(e.reason.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table>");
    let more = n.entries.len().saturating_sub(MAX_ROWS_PER_NODE) as u64 + n.omitted();
    if more > 0 {
        let _ = write!(o, "<p class=meta data-more=\"{more}\">{more} more</p>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::record;
    use crate::audit::AuditLogSummary;

    #[test]
    fn counts_each_nodes_entries_and_cuts_the_table_with_how_many_more() {
        let mut entries: Vec<_> = (0..60)
            .map(|_| record("n1", "status", "admin", "ok"))
            .collect();
        entries.push(record("n1", "read", "none", "unauthorized"));
        let summary = AuditLogSummary {
            node: "n1".into(),
            file: "nodes/n1/audit.jsonl".into(),
            entries: 70,
            recorded: 61,
            omitted: 9,
            dropped: 3,
            by_outcome: [("ok".to_string(), 69), ("unauthorized".to_string(), 1)].into(),
            by_role: [("admin".to_string(), 69), ("none".to_string(), 1)].into(),
            ..AuditLogSummary::default()
        };
        let nodes = vec![
            NodeAudit {
                node: "n1".into(),
                summary: Some(summary),
                entries,
            },
            NodeAudit {
                node: "n2".into(),
                summary: None,
                entries: vec![record("n2", "connect", "none", "tls-required")],
            },
        ];
        let mut html = String::new();
        audit_section(&mut html, &nodes);
        for needle in [
            "<h2 id=audit>Audit</h2>",
            "<h3 id=\"audit-n1\">n1</h3><p class=meta>70 entries in <a href=\"nodes/n1/audit.jsonl\">",
            "3 lost by the node",
            "<tr><td>ok</td><td class=n>69</td></tr>",
            "<tr><td>unauthorized</td><td class=n>1</td></tr>",
            "<tr><td>none</td><td class=n>1</td></tr>",
            // 61 recorded, 50 shown, 9 never recorded: 20 more.
            "data-more=\"20\">20 more</p>",
            "<h3 id=\"audit-n2\">n2</h3><p class=meta>1 entries</p>",
            "<td>tls-required</td>",
            "<td class=n>0.005</td>",
        ] {
            assert!(html.contains(needle), "missing {needle}:\n{html}");
        }
        let n1 = html.split("audit-n2").next().expect("n1's part");
        assert_eq!(
            n1.matches("<td>status</td>").count(),
            MAX_ROWS_PER_NODE,
            "the table is cut at {MAX_ROWS_PER_NODE} rows"
        );
        assert!(!n1.contains("<td>read</td>"), "the 61st row is cut");
        assert_eq!(html.matches("data-more").count(), 1, "n2 needs no more");

        let mut none = String::new();
        audit_section(&mut none, &[]);
        assert!(none.is_empty(), "no audit events, no section");
    }
}
