//! The shard ownership timeline of a sharded run, as SVG and an HTML table:
//! one row per shard, its replica set over time as coloured segments (one
//! colour per distinct replica set), a shard's move during a membership
//! change hatched over its row, and a marker per change (`+n4`, `-n2`).
//!
//! Guarantees: the drawing has one row per shard and, per row, one segment
//! per placement epoch (merged where the replica set did not change), so
//! its size is bounded by shards × changes; every text is escaped.

use crate::shard_ownership::ShardOwnership;
use crate::timeline::{escape, TIMELINE_WIDTH};
use std::collections::HashMap;
use std::fmt::Write;

const LABEL_WIDTH: f64 = 56.0;
const ROW_HEIGHT: f64 = 18.0;
const TOP: f64 = 18.0;
const AXIS_HEIGHT: f64 = 22.0;

/// Colours for replica sets, in order of first appearance (then reused).
const PALETTE: [&str; 12] = [
    "#93c5fd", "#fca5a5", "#86efac", "#fcd34d", "#c4b5fd", "#f9a8d4", "#5eead4", "#fdba74",
    "#a5b4fc", "#bef264", "#d8b4fe", "#67e8f9",
];

fn set_key(replicas: &[String]) -> String {
    let mut r = replicas.to_vec();
    r.sort();
    r.join(",")
}

/// One segment of a row: a time range with one replica set.
struct Segment {
    start_ns: u64,
    end_ns: u64,
    replicas: Vec<String>,
    unconfirmed: bool,
}

/// The segments of `shard`'s row, adjacent epochs with the same set merged.
fn segments(o: &ShardOwnership, shard: u32) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for e in &o.epochs {
        let replicas = e.placement.get(shard as usize).cloned().unwrap_or_default();
        let unconfirmed = e.unconfirmed.contains(&shard);
        match out.last_mut() {
            Some(last)
                if set_key(&last.replicas) == set_key(&replicas)
                    && last.unconfirmed == unconfirmed =>
            {
                last.end_ns = e.end_ns;
            }
            _ => out.push(Segment {
                start_ns: e.start_ns,
                end_ns: e.end_ns,
                replicas,
                unconfirmed,
            }),
        }
    }
    out
}

/// Draws the ownership timeline; `end_ns` is the end of the history.
pub fn svg(o: &ShardOwnership, end_ns: u64) -> String {
    let end = end_ns.max(1) as f64;
    let x = |ns: u64| LABEL_WIDTH + (ns as f64 / end).min(1.0) * TIMELINE_WIDTH;
    let rows = o.shards.max(1) as f64;
    let height = TOP + rows * ROW_HEIGHT + AXIS_HEIGHT;
    let width = LABEL_WIDTH + TIMELINE_WIDTH + 8.0;
    let mut colours: HashMap<String, &str> = HashMap::new();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="shards" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="10">"#
    );
    out.push_str(r##"<defs><pattern id="sh-moving" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2" height="6" fill="#111827" fill-opacity="0.45"/></pattern></defs>"##);
    for shard in 0..o.shards {
        let y = TOP + f64::from(shard) * ROW_HEIGHT;
        let _ = write!(
            out,
            r##"<text x="{lx:.1}" y="{ty:.1}" text-anchor="end" fill="#444">s{shard}</text>"##,
            lx = LABEL_WIDTH - 4.0,
            ty = y + ROW_HEIGHT - 5.0
        );
        for s in segments(o, shard) {
            let key = set_key(&s.replicas);
            let n = colours.len();
            let colour = *colours.entry(key).or_insert(PALETTE[n % PALETTE.len()]);
            let (x0, x1) = (x(s.start_ns), x(s.end_ns).max(x(s.start_ns) + 1.0));
            let label = s.replicas.join(" ");
            let tip = format!(
                "s{shard}: {} from {:.3}s to {:.3}s{}",
                s.replicas.join(", "),
                s.start_ns as f64 / 1e9,
                s.end_ns as f64 / 1e9,
                if s.unconfirmed {
                    " (the move here did not finish: the ring's target, not confirmed)"
                } else {
                    ""
                }
            );
            let _ = write!(
                out,
                r##"<g class="replicas{cls}"><title>{tip}</title><rect x="{x0:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"{dash}/>"##,
                cls = if s.unconfirmed { " unconfirmed" } else { "" },
                tip = escape(&tip),
                y0 = y + 1.0,
                w = x1 - x0,
                h = ROW_HEIGHT - 2.0,
                dash = if s.unconfirmed {
                    r##" fill-opacity="0.45" stroke="#b91c1c" stroke-dasharray="3,2""##
                } else {
                    ""
                },
            );
            // About 5.5 px per character at font-size 10.
            if x1 - x0 > label.chars().count() as f64 * 5.5 + 6.0 {
                let _ = write!(
                    out,
                    r##"<text x="{tx:.1}" y="{ty:.1}" fill="#111827">{}</text>"##,
                    escape(&label),
                    tx = x0 + 3.0,
                    ty = y + ROW_HEIGHT - 5.0
                );
            }
            out.push_str("</g>");
        }
    }
    // Moves in progress, and a marker per change.
    for c in &o.changes {
        let c_end = c.end_ns.unwrap_or(end_ns);
        let (x0, x1) = (x(c.start_ns), x(c_end).max(x(c.start_ns) + 1.0));
        for m in &c.moves {
            let y = TOP + f64::from(m.shard) * ROW_HEIGHT;
            let tip = format!(
                "s{} moving {} → {} ({}) from {:.3}s to {:.3}s",
                m.shard,
                m.before.join(","),
                m.after.join(","),
                m.outcome,
                c.start_ns as f64 / 1e9,
                c_end as f64 / 1e9
            );
            let _ = write!(
                out,
                r#"<rect class="moving" x="{x0:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" fill="url(#sh-moving)"><title>{}</title></rect>"#,
                escape(&tip),
                y0 = y + 1.0,
                w = x1 - x0,
                h = ROW_HEIGHT - 2.0
            );
        }
        let sign = if c.action == "remove" { "-" } else { "+" };
        let _ = write!(
            out,
            r##"<g class="change"><title>{tip}</title><line x1="{x0:.1}" y1="{t:.1}" x2="{x0:.1}" y2="{b:.1}" stroke="#111827" stroke-width="1"/><text x="{tx:.1}" y="12" fill="#111827">{label}</text></g>"##,
            tip = escape(&c.line()),
            t = TOP - 4.0,
            b = TOP + rows * ROW_HEIGHT,
            tx = x0 + 2.0,
            label = escape(&format!("{sign}{}", c.node)),
        );
    }
    let axis_y = height - AXIS_HEIGHT;
    let _ = write!(
        out,
        r##"<line x1="{LABEL_WIDTH}" y1="{axis_y:.1}" x2="{x2:.1}" y2="{axis_y:.1}" stroke="#888"/><text x="{LABEL_WIDTH}" y="{ty:.1}" fill="#444">0s</text><text x="{x2:.1}" y="{ty:.1}" text-anchor="end" fill="#444">{t:.1}s</text>"##,
        x2 = LABEL_WIDTH + TIMELINE_WIDTH,
        ty = axis_y + 15.0,
        t = end / 1e9
    );
    out.push_str("</svg>");
    out
}

/// The placements as a table: one row per epoch, its time range, members
/// and each shard's replicas.
pub fn placements_table(o: &ShardOwnership) -> String {
    let mut out =
        String::from("<table class=placements><tr><th>from s</th><th>to s</th><th>members</th>");
    for s in 0..o.shards {
        let _ = write!(out, "<th>s{s}</th>");
    }
    out.push_str("</tr>");
    for e in &o.epochs {
        let _ = write!(
            out,
            "<tr><td class=n>{:.3}</td><td class=n>{:.3}</td><td>{}</td>",
            e.start_ns as f64 / 1e9,
            e.end_ns as f64 / 1e9,
            escape(&e.members.join(" "))
        );
        for s in 0..o.shards {
            let r = e
                .placement
                .get(s as usize)
                .map(|r| r.join(" "))
                .unwrap_or_default();
            let mark = if e.unconfirmed.contains(&s) { " ?" } else { "" };
            let _ = write!(out, "<td>{}{mark}</td>", escape(&r));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// The changes as a table: one row per change with its moved shards.
pub fn changes_table(o: &ShardOwnership) -> String {
    let mut out = String::from("<table class=membership><tr><th>start s</th><th>end s</th><th>change</th><th>members after</th><th>moved shards</th><th>error</th></tr>");
    for c in &o.changes {
        let moves: Vec<String> = c.moves.iter().map(|m| m.to_string()).collect();
        let _ = write!(
            out,
            "<tr><td class=n>{:.3}</td><td class=n>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            c.start_ns as f64 / 1e9,
            c.end_ns
                .map_or("never".to_string(), |e| format!("{:.3}", e as f64 / 1e9)),
            if c.action == "remove" { "-" } else { "+" },
            escape(&c.node),
            escape(&c.members.join(" ")),
            escape(&moves.join("; ")),
            escape(c.error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard_ownership::{MembershipChange, PlacementEpoch, ShardMoveOutcome};
    use std::collections::BTreeSet;

    fn v(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn ownership() -> ShardOwnership {
        ShardOwnership {
            shards: 2,
            epochs: vec![
                PlacementEpoch {
                    start_ns: 0,
                    end_ns: 4_000_000_000,
                    members: v(&["n1", "n2", "n3"]),
                    placement: vec![v(&["n1", "n2"]), v(&["n2", "n3"])],
                    unconfirmed: BTreeSet::new(),
                },
                PlacementEpoch {
                    start_ns: 4_000_000_000,
                    end_ns: 10_000_000_000,
                    members: v(&["n1", "n2", "n3", "n<4>"]),
                    // s0's order changed only: no new segment.
                    placement: vec![v(&["n2", "n1"]), v(&["n<4>", "n3"])],
                    unconfirmed: BTreeSet::from([1]),
                },
            ],
            changes: vec![MembershipChange {
                start_ns: 2_000_000_000,
                end_ns: Some(4_000_000_000),
                action: "add".into(),
                node: "n<4>".into(),
                members: v(&["n1", "n2", "n3", "n<4>"]),
                moves: vec![ShardMoveOutcome {
                    shard: 1,
                    before: v(&["n2", "n3"]),
                    after: v(&["n<4>", "n3"]),
                    outcome: "timeout".into(),
                    error: None,
                }],
                error: None,
            }],
        }
    }

    #[test]
    fn one_row_per_shard_one_segment_per_replica_set_and_moves_hatched() {
        let o = ownership();
        let svg = svg(&o, 10_000_000_000);
        assert_eq!(svg.matches(r#"<g class="replicas"#).count(), 3, "{svg}");
        assert_eq!(svg.matches(r#"class="replicas unconfirmed""#).count(), 1);
        assert_eq!(svg.matches(r#"<rect class="moving""#).count(), 1);
        assert!(svg.contains(">s0</text>") && svg.contains(">s1</text>"));
        assert!(svg.contains(">+n&lt;4&gt;</text>"), "markers are escaped");
        assert!(!svg.contains("n<4>"));
        // s0 spans the whole run in one segment: full width.
        let full = format!(r#"width="{:.1}""#, TIMELINE_WIDTH);
        assert!(svg.contains(&full), "{full}");
        // Three distinct replica sets, three colours.
        let fills: BTreeSet<&str> = svg
            .match_indices(r##"fill="#"##)
            .map(|(i, _)| &svg[i + 6..i + 13])
            .filter(|c| PALETTE.contains(c))
            .collect();
        assert_eq!(fills.len(), 3, "{fills:?}");
    }

    #[test]
    fn tables_list_every_epoch_and_change() {
        let o = ownership();
        let p = placements_table(&o);
        assert_eq!(p.matches("<tr>").count(), 3);
        assert!(p.contains("<td>n&lt;4&gt; n3 ?</td>"), "{p}");
        let c = changes_table(&o);
        assert!(c.contains("s1 n2,n3 → n&lt;4&gt;,n3 timeout"), "{c}");
        assert!(c.contains("<td class=n>4.000</td>"));
    }
}
