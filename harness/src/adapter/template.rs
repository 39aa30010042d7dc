//! Command templates: the adapter file's strings with `{{placeholder}}`s.
//!
//! A template is parsed once, when the adapter file is read, against the
//! names that file declares (ports, params, lists) and the scope it runs in
//! (per node, once for the cluster, per client worker): an unknown or
//! out-of-scope placeholder is refused then, naming the file and line.
//! Rendering fills in values and refuses one a shell would split or
//! interpret (a space, a quote, `$`, …), naming the placeholder: commands
//! run under `sh -c`, so every value must stand as one literal word.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where a template runs, which decides the placeholders it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A node's commands (setup, start, ready, stop, logs) and list items:
    /// the node's own values are known.
    Node,
    /// Commands about the whole cluster (install, version, primary,
    /// healthy): no node of its own.
    Cluster,
    /// The client command: the cluster's values and the worker.
    Client,
}

impl Scope {
    fn describe(self) -> &'static str {
        match self {
            Scope::Node => "a node's command",
            Scope::Cluster => "a cluster command",
            Scope::Client => "the client command",
        }
    }
}

/// Which nodes a list runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Over {
    /// Every node.
    Nodes,
    /// Every node but the one the command runs for.
    Peers,
}

/// One value of one node, as a placeholder names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeField {
    Id,
    Name,
    Ip,
    Port(String),
    Addr(String),
}

impl NodeField {
    fn parse(text: &str, ports: &[String]) -> Option<Result<NodeField, String>> {
        let field = match text {
            "id" => NodeField::Id,
            "name" => NodeField::Name,
            "ip" => NodeField::Ip,
            _ => {
                let (kind, port) = text.split_once('.')?;
                if kind != "port" && kind != "addr" {
                    return None;
                }
                if !ports.iter().any(|p| p == port) {
                    return Some(Err(format!(
                        "no port named {port:?}: [node.ports] declares {}",
                        list_or_none(ports)
                    )));
                }
                if kind == "port" {
                    NodeField::Port(port.to_string())
                } else {
                    NodeField::Addr(port.to_string())
                }
            }
        };
        Some(Ok(field))
    }
}

/// What a placeholder stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// A value of the node the command runs for.
    Own(NodeField),
    /// The node's data directory.
    DataDir,
    /// A value of node `nN` (1-based), whatever node the command runs for.
    Node(u32, NodeField),
    /// A value of every node (or every peer), joined by commas.
    Each(Over, NodeField),
    /// A list the file defines in `[lists]`.
    List(String),
    NodeCount,
    Param(String),
    AdapterDir,
    Faultline,
    RunDir,
    Worker,
    /// The run's isolation level (`--isolation`, or `[isolation]`'s default).
    Isolation,
}

/// The names an adapter file declares, against which placeholders are
/// checked.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub ports: Vec<String>,
    pub params: Vec<String>,
    /// Each list's name and what it runs over.
    pub lists: Vec<(String, Over)>,
    /// Whether the file declares `[isolation]` levels (`{{isolation}}`).
    pub isolation: bool,
}

/// Every placeholder, for error messages.
pub const PLACEHOLDERS_HELP: &str = "id, name, ip, port.P, addr.P, data_dir (a node's own); \
nN.id, nN.name, nN.ip, nN.port.P, nN.addr.P (node N); nodes.F and peers.F (F of every node, or every other node, comma-joined); \
list.L ([lists]); node_count, param.X, adapter_dir, faultline, run_dir; isolation ([isolation]); worker (client only)";

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

impl Key {
    /// Parses a placeholder's name in `scope`; the error says why not.
    fn parse(text: &str, scope: Scope, names: &Names) -> Result<Key, String> {
        let own_only = |key: Key| -> Result<Key, String> {
            if scope == Scope::Node {
                Ok(key)
            } else {
                Err(format!(
                    "{{{{{text}}}}} is a value of the node a command runs for, and {} runs for no node; \
                     name a node ({{{{n1.ip}}}}) or use nodes.F",
                    scope.describe()
                ))
            }
        };
        match text {
            "data_dir" => return own_only(Key::DataDir),
            "node_count" => return Ok(Key::NodeCount),
            "adapter_dir" => return Ok(Key::AdapterDir),
            "faultline" => return Ok(Key::Faultline),
            "run_dir" => return Ok(Key::RunDir),
            "isolation" if names.isolation => return Ok(Key::Isolation),
            "isolation" => {
                return Err(
                    "the file declares no [isolation] levels (levels = [...], default = ...), so a run has none to give"
                        .to_string(),
                )
            }
            "worker" if scope == Scope::Client => return Ok(Key::Worker),
            "worker" => {
                return Err(format!(
                    "{{{{worker}}}} exists only in [client] command, not in {}",
                    scope.describe()
                ))
            }
            _ => {}
        }
        if let Some(field) = NodeField::parse(text, &names.ports) {
            return own_only(Key::Own(field?));
        }
        let (head, rest) = text.split_once('.').unwrap_or((text, ""));
        match head {
            "param" => {
                if names.params.iter().any(|p| p == rest) {
                    Ok(Key::Param(rest.to_string()))
                } else {
                    Err(format!(
                        "no param named {rest:?}: [params] declares {}",
                        list_or_none(&names.params)
                    ))
                }
            }
            "list" => match names.lists.iter().find(|(n, _)| n == rest) {
                Some((_, Over::Peers)) => own_only(Key::List(rest.to_string())),
                Some(_) => Ok(Key::List(rest.to_string())),
                None => Err(format!(
                    "no list named {rest:?}: [lists] declares {}",
                    list_or_none(
                        &names
                            .lists
                            .iter()
                            .map(|(n, _)| n.clone())
                            .collect::<Vec<_>>()
                    )
                )),
            },
            "nodes" | "peers" => {
                let field = NodeField::parse(rest, &names.ports).unwrap_or_else(|| {
                    Err(format!("{head}.{rest}: use {head}.id, {head}.name, {head}.ip, {head}.port.P or {head}.addr.P"))
                })?;
                if head == "peers" {
                    own_only(Key::Each(Over::Peers, field))
                } else {
                    Ok(Key::Each(Over::Nodes, field))
                }
            }
            _ => {
                let number = head
                    .strip_prefix('n')
                    .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
                match number.and_then(|d| d.parse::<u32>().ok()) {
                    Some(0) => Err("nodes are numbered from 1 (n1)".to_string()),
                    Some(n) => {
                        let field = NodeField::parse(rest, &names.ports).unwrap_or_else(|| {
                            Err(format!("{head}.{rest}: use {head}.id, {head}.name, {head}.ip, {head}.port.P or {head}.addr.P"))
                        })?;
                        Ok(Key::Node(n, field))
                    }
                    None => Err("unknown placeholder".to_string()),
                }
            }
        }
    }
}

/// Where a template came from, for messages: the file and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    /// The setting, as the file spells it (`node.setup`).
    pub field: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.field)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Placeholder { key: Key, name: String, line: usize },
}

/// A parsed command template. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    origin: Origin,
}

/// A template that names something it cannot: the file and line, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// Lines of `raw` before byte `offset`, plus one.
pub fn line_of(raw: &str, offset: usize) -> usize {
    raw.as_bytes()[..offset.min(raw.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Template {
    /// Parses `text`, the value of `field` found in the file's source at
    /// `span` (byte range of the value, quotes included), in `scope`.
    pub fn parse(
        text: &str,
        scope: Scope,
        names: &Names,
        origin: Origin,
        raw: Option<(&str, std::ops::Range<usize>)>,
    ) -> Result<Template, TemplateError> {
        // The line of the n-th occurrence of `needle` in the value's
        // source (escapes aside, placeholders read the same there).
        let line_for = |needle: &str, nth: usize| -> usize {
            if let Some((raw, span)) = &raw {
                let src = &raw[span.clone()];
                if let Some((at, _)) = src.match_indices(needle).nth(nth) {
                    return line_of(raw, span.start + at);
                }
            }
            origin.line
        };
        let mut parts = Vec::new();
        let mut rest = text;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError {
                    file: origin.file.clone(),
                    line: line_for("{{", 0),
                    message: format!("{}: a {{{{ with no closing }}}}", origin.field),
                });
            };
            let inner = &after[..close];
            let name = inner.trim();
            let written = format!("{{{{{inner}}}}}");
            let nth = seen.entry(written.clone()).or_insert(0);
            let line = line_for(&written, *nth);
            *nth += 1;
            let key = Key::parse(name, scope, names).map_err(|why| TemplateError {
                file: origin.file.clone(),
                line,
                message: format!(
                    "{}: {{{{{name}}}}}: {why} (placeholders: {PLACEHOLDERS_HELP}; docs/adapters.md)",
                    origin.field
                ),
            })?;
            parts.push(Part::Placeholder {
                key,
                name: name.to_string(),
                line,
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
            origin,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The placeholders this template uses.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.parts.iter().filter_map(|p| match p {
            Part::Placeholder { key, .. } => Some(key),
            Part::Text(_) => None,
        })
    }

    /// Fills in the values for node `node` (an index into `values.nodes`;
    /// None outside node scope) and client worker `worker`.
    pub fn render(
        &self,
        values: &Values,
        node: Option<usize>,
        worker: Option<usize>,
    ) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Placeholder { key, name, line } => {
                    let err = |message: String| TemplateError {
                        file: self.origin.file.clone(),
                        line: *line,
                        message: format!("{}: {{{{{name}}}}}: {message}", self.origin.field),
                    };
                    let value = values.value(key, node, worker).map_err(err)?;
                    if key_is_literal(key) {
                        out.push_str(&value);
                    } else {
                        check_word(&value).map_err(|why| {
                            err(format!("the value {value:?} {why}; commands run under sh -c, so every value must be one plain word"))
                        })?;
                        out.push_str(&value);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Lists are built from item templates whose values were checked already,
/// joined by the file's own separator: they go in as they are.
fn key_is_literal(key: &Key) -> bool {
    matches!(key, Key::List(_))
}

/// Refuses a value a shell would not read as one literal word.
pub fn check_word(value: &str) -> Result<(), String> {
    match value
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "_./:,=@%+-~".contains(c)))
    {
        None => Ok(()),
        Some(c) => Err(format!("holds {c:?}")),
    }
}

/// One node's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeValues {
    pub id: u32,
    pub name: String,
    pub ip: IpAddr,
    pub ports: BTreeMap<String, u16>,
    pub data_dir: PathBuf,
}

impl NodeValues {
    fn field(&self, field: &NodeField) -> Result<String, String> {
        Ok(match field {
            NodeField::Id => self.id.to_string(),
            NodeField::Name => self.name.clone(),
            NodeField::Ip => self.ip.to_string(),
            NodeField::Port(p) => self.port(p)?.to_string(),
            NodeField::Addr(p) => std::net::SocketAddr::new(self.ip, self.port(p)?).to_string(),
        })
    }

    fn port(&self, name: &str) -> Result<u16, String> {
        self.ports
            .get(name)
            .copied()
            .ok_or_else(|| format!("node {} has no port {name:?}", self.name))
    }
}

/// A list of `[lists]`: an item template per node, joined.
#[derive(Clone, Debug, PartialEq)]
pub struct ListSpec {
    pub over: Over,
    pub item: Template,
    pub separator: String,
}

/// Everything a template may be filled in with.
#[derive(Clone, Debug)]
pub struct Values<'a> {
    pub nodes: &'a [NodeValues],
    pub params: &'a BTreeMap<String, String>,
    pub lists: &'a BTreeMap<String, ListSpec>,
    pub adapter_dir: &'a Path,
    pub faultline: &'a Path,
    pub run_dir: &'a Path,
    /// The run's isolation level, for a file that declares levels.
    pub isolation: Option<&'a str>,
}

impl Values<'_> {
    fn own(&self, node: Option<usize>) -> Result<&NodeValues, String> {
        node.and_then(|i| self.nodes.get(i))
            .ok_or_else(|| "no node to take it from".to_string())
    }

    fn value(
        &self,
        key: &Key,
        node: Option<usize>,
        worker: Option<usize>,
    ) -> Result<String, String> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        match key {
            Key::Own(field) => self.own(node)?.field(field),
            Key::DataDir => Ok(path(&self.own(node)?.data_dir)),
            Key::Node(n, field) => match self.nodes.get(*n as usize - 1) {
                Some(v) => v.field(field),
                None => Err(format!(
                    "there is no node n{n} in a cluster of {} (--node-count)",
                    self.nodes.len()
                )),
            },
            Key::Each(over, field) => {
                let mut items = Vec::new();
                for (i, v) in self.nodes.iter().enumerate() {
                    if *over == Over::Peers && Some(i) == node {
                        continue;
                    }
                    items.push(v.field(field)?);
                }
                Ok(items.join(","))
            }
            Key::List(name) => {
                let spec = self
                    .lists
                    .get(name)
                    .ok_or_else(|| format!("no list {name:?}"))?;
                let mut items = Vec::new();
                for i in 0..self.nodes.len() {
                    if spec.over == Over::Peers && Some(i) == node {
                        continue;
                    }
                    items.push(
                        spec.item
                            .render(self, Some(i), worker)
                            .map_err(|e| e.to_string())?,
                    );
                }
                Ok(items.join(&spec.separator))
            }
            Key::NodeCount => Ok(self.nodes.len().to_string()),
            Key::Param(name) => self
                .params
                .get(name)
                .cloned()
                .ok_or_else(|| format!("no param {name:?}")),
            Key::AdapterDir => Ok(path(self.adapter_dir)),
            Key::Faultline => Ok(path(self.faultline)),
            Key::RunDir => Ok(path(self.run_dir)),
            Key::Worker => worker
                .map(|w| w.to_string())
                .ok_or_else(|| "no worker here".to_string()),
            Key::Isolation => self
                .isolation
                .map(str::to_string)
                .ok_or_else(|| "the run has no isolation level".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn names() -> Names {
        Names {
            ports: vec!["redis".into(), "sentinel".into()],
            params: vec!["quorum".into()],
            lists: vec![
                ("cluster".into(), Over::Nodes),
                ("others".into(), Over::Peers),
            ],
            isolation: true,
        }
    }

    fn origin(field: &str) -> Origin {
        Origin {
            file: PathBuf::from("x.toml"),
            line: 7,
            field: field.into(),
        }
    }

    fn parse(text: &str, scope: Scope) -> Result<Template, TemplateError> {
        Template::parse(text, scope, &names(), origin("node.setup"), None)
    }

    fn nodes() -> Vec<NodeValues> {
        (1..=3)
            .map(|i| NodeValues {
                id: i,
                name: format!("n{i}"),
                ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i as u8)),
                ports: [
                    ("redis".to_string(), 6000 + i as u16),
                    ("sentinel".to_string(), 7000 + i as u16),
                ]
                .into_iter()
                .collect(),
                data_dir: PathBuf::from(format!("/s/n{i}")),
            })
            .collect()
    }

    fn render(t: &Template, node: Option<usize>) -> Result<String, TemplateError> {
        let nodes = nodes();
        let params = [("quorum".to_string(), "2".to_string())]
            .into_iter()
            .collect();
        let item = Template::parse(
            "{{name}}=http://{{addr.redis}}",
            Scope::Node,
            &names(),
            origin("lists.cluster.item"),
            None,
        )
        .expect("item parses");
        let lists = [
            (
                "cluster".to_string(),
                ListSpec {
                    over: Over::Nodes,
                    item: item.clone(),
                    separator: ",".into(),
                },
            ),
            (
                "others".to_string(),
                ListSpec {
                    over: Over::Peers,
                    item,
                    separator: " ".into(),
                },
            ),
        ]
        .into_iter()
        .collect();
        let values = Values {
            nodes: &nodes,
            params: &params,
            lists: &lists,
            adapter_dir: Path::new("/a"),
            faultline: Path::new("/bin/faultline"),
            run_dir: Path::new("/s"),
            isolation: Some("repeatable-read"),
        };
        t.render(&values, node, Some(4))
    }

    #[test]
    fn every_placeholder_renders_as_documented() {
        let t = parse(
            "{{id}} {{name}} {{ip}} {{port.redis}} {{addr.sentinel}} {{data_dir}} {{n1.addr.redis}} \
             {{nodes.ip}} {{peers.port.redis}} {{ list.cluster }} [{{list.others}}] {{node_count}} \
             {{param.quorum}} {{adapter_dir}} {{faultline}} {{run_dir}} {{isolation}}",
            Scope::Node,
        )
        .expect("parses");
        assert_eq!(
            render(&t, Some(1)).expect("renders"),
            "2 n2 127.0.0.12 6002 127.0.0.12:7002 /s/n2 127.0.0.11:6001 \
             127.0.0.11,127.0.0.12,127.0.0.13 6001,6003 \
             n1=http://127.0.0.11:6001,n2=http://127.0.0.12:6002,n3=http://127.0.0.13:6003 \
             [n1=http://127.0.0.11:6001 n3=http://127.0.0.13:6003] 3 2 /a /bin/faultline /s repeatable-read"
        );
        let c = parse("python3 c.py {{worker}} {{n3.ip}}", Scope::Client).expect("parses");
        assert_eq!(
            render(&c, None).expect("renders"),
            "python3 c.py 4 127.0.0.13"
        );
    }

    #[test]
    fn unknown_and_out_of_scope_placeholders_name_the_line_and_why() {
        let e = parse("x {{prot.redis}}", Scope::Node).expect_err("unknown");
        assert_eq!((e.file.to_str(), e.line), (Some("x.toml"), 7));
        assert!(
            e.message
                .starts_with("node.setup: {{prot.redis}}: unknown placeholder"),
            "{}",
            e.message
        );
        let e = parse("{{port.memcached}}", Scope::Node).expect_err("no such port");
        assert!(
            e.message
                .contains("no port named \"memcached\": [node.ports] declares redis, sentinel"),
            "{}",
            e.message
        );
        let e = parse("{{ip}}", Scope::Cluster).expect_err("no own node");
        assert!(
            e.message.contains("a cluster command runs for no node"),
            "{}",
            e.message
        );
        let e = parse("{{peers.ip}}", Scope::Client).expect_err("no own node");
        assert!(
            e.message.contains("the client command runs for no node"),
            "{}",
            e.message
        );
        let e = parse("{{worker}}", Scope::Node).expect_err("client only");
        assert!(
            e.message.contains("only in [client] command"),
            "{}",
            e.message
        );
        let e = parse("{{param.bug}}", Scope::Node).expect_err("undeclared param");
        assert!(
            e.message.contains("[params] declares quorum"),
            "{}",
            e.message
        );
        let e = parse("{{n0.ip}}", Scope::Node).expect_err("n0");
        assert!(e.message.contains("numbered from 1"), "{}", e.message);
        let e = parse("echo {{ip", Scope::Node).expect_err("unclosed");
        assert!(e.message.contains("no closing"), "{}", e.message);
        let without_levels = Names {
            isolation: false,
            ..names()
        };
        let e = Template::parse(
            "client --isolation {{isolation}}",
            Scope::Client,
            &without_levels,
            origin("client.command"),
            None,
        )
        .expect_err("no [isolation] declared");
        assert!(
            e.message.starts_with(
                "client.command: {{isolation}}: the file declares no [isolation] levels"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_line_is_the_placeholders_own_in_a_multi_line_string() {
        let raw = "a = 1\nsetup = \"\"\"\nmkdir {{data_dir}}\necho {{bogus}}\n\"\"\"\n";
        let start = raw.find("\"\"\"").expect("value");
        let span = start..raw.len() - 1;
        let text = "mkdir {{data_dir}}\necho {{bogus}}\n";
        let e = Template::parse(
            text,
            Scope::Node,
            &names(),
            origin("node.setup"),
            Some((raw, span)),
        )
        .expect_err("bogus");
        assert_eq!(e.line, 4, "{e}");
    }

    #[test]
    fn a_node_beyond_the_cluster_or_an_unsafe_value_is_refused_when_rendering() {
        let t = parse("{{n5.ip}}", Scope::Node).expect("parses: the count is known later");
        let e = render(&t, Some(0)).expect_err("no n5");
        assert!(
            e.message.contains("no node n5 in a cluster of 3"),
            "{}",
            e.message
        );
        assert_eq!(e.line, 7);
        assert!(check_word("/tmp/my store").is_err());
        assert!(check_word("$(rm -rf x)").is_err());
        assert!(check_word("/tmp/store/n1_x-2.log").is_ok());
    }
}
