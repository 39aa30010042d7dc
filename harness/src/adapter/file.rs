//! The adapter file (TOML; docs/adapters.md), read into one typed
//! [`AdapterFile`]: every command parsed into a [`Template`] checked against
//! the names the file declares, every workload and fault kind checked
//! against what faultline has. Anything wrong is an [`AdapterFileError`]
//! naming the file and line; nothing here panics on any input.

use super::template::{check_word, line_of, ListSpec, Names, Origin, Over, Scope, Template};
use crate::nemesis::FaultKind;
use crate::run::isolation::IsolationLevel;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The largest adapter file read (a config, not a data set).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The fault kinds an adapter may list.
pub const ADAPTER_FAULTS: [FaultKind; 5] = [
    FaultKind::Partition,
    FaultKind::Loss,
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Clock,
];

/// An adapter file that cannot be used: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterFileError {
    pub file: PathBuf,
    /// None when the error is about the whole file (unreadable).
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for AdapterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for AdapterFileError {}

impl From<super::template::TemplateError> for AdapterFileError {
    fn from(e: super::template::TemplateError) -> Self {
        AdapterFileError {
            file: e.file,
            line: Some(e.line),
            message: e.message,
        }
    }
}

/// One daemon of a node: a foreground command in its own process group.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonSpec {
    pub name: String,
    pub start: Template,
}

/// The isolation levels a system takes (`[isolation]`), given to its
/// commands as `{{isolation}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsolationSpec {
    /// The levels `--isolation` may name, in the file's order.
    pub levels: Vec<IsolationLevel>,
    /// The level of a run without `--isolation`.
    pub default: IsolationLevel,
}

/// What faultline does on every node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// Port names and the numbers remote mode uses (local mode picks free
    /// ports), in the file's order.
    pub ports: Vec<(String, u16)>,
    pub setup: Option<Template>,
    pub daemons: Vec<DaemonSpec>,
    pub ready: Option<Template>,
    pub stop: Option<Template>,
    pub logs: Vec<Template>,
}

/// The adapter file, read and checked. See the module docs.
#[derive(Clone, Debug)]
pub struct AdapterFile {
    pub path: PathBuf,
    /// The directory holding the file, absolute: `{{adapter_dir}}`.
    pub dir: PathBuf,
    pub name: String,
    pub version: Option<Template>,
    pub requires: Vec<String>,
    pub install: Option<Template>,
    pub workloads: Vec<String>,
    pub faults: Vec<FaultKind>,
    /// The most nodes the system runs (`max_nodes`; a single-node
    /// database says 1); None: any number.
    pub max_nodes: Option<u32>,
    /// The isolation levels it takes; None: `--isolation` is refused.
    pub isolation: Option<IsolationSpec>,
    /// Params and their defaults (`--param NAME=VALUE` overrides).
    pub params: BTreeMap<String, String>,
    pub lists: BTreeMap<String, ListSpec>,
    pub node: NodeSpec,
    pub primary: Option<Template>,
    pub healthy: Option<Template>,
    pub client: Template,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Spanned<String>,
    version: Option<Spanned<String>>,
    requires: Option<Vec<Spanned<String>>>,
    install: Option<Spanned<String>>,
    workloads: Spanned<Vec<Spanned<String>>>,
    faults: Spanned<Vec<Spanned<String>>>,
    max_nodes: Option<Spanned<u32>>,
    isolation: Option<Spanned<RawIsolation>>,
    params: Option<BTreeMap<String, Spanned<String>>>,
    lists: Option<BTreeMap<String, Spanned<RawList>>>,
    node: Spanned<RawNode>,
    cluster: Option<RawCluster>,
    client: Spanned<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    levels: Spanned<Vec<Spanned<String>>>,
    default: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    over: Option<Spanned<String>>,
    item: Spanned<String>,
    separator: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    ports: Spanned<BTreeMap<String, Spanned<u16>>>,
    setup: Option<Spanned<String>>,
    daemon: Spanned<Vec<Spanned<RawDaemon>>>,
    ready: Option<Spanned<String>>,
    stop: Option<Spanned<String>>,
    logs: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    name: Spanned<String>,
    start: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    primary: Option<Spanned<String>>,
    healthy: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    command: Spanned<String>,
}

/// True for names the file may give ports, params, lists and daemons.
fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

struct Reader<'a> {
    path: &'a Path,
    raw: &'a str,
}

impl Reader<'_> {
    fn error_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> AdapterFileError {
        AdapterFileError {
            file: self.path.to_path_buf(),
            line: Some(line_of(self.raw, span.start)),
            message: message.into(),
        }
    }

    fn template(
        &self,
        value: &Spanned<String>,
        field: &str,
        scope: Scope,
        names: &Names,
    ) -> Result<Template, AdapterFileError> {
        let text = value.get_ref();
        if text.trim().is_empty() {
            return Err(self.error_at(value.span(), format!("{field}: the command is empty")));
        }
        let origin = Origin {
            file: self.path.to_path_buf(),
            line: line_of(self.raw, value.span().start),
            field: field.to_string(),
        };
        Ok(Template::parse(
            text,
            scope,
            names,
            origin,
            Some((self.raw, value.span())),
        )?)
    }

    fn optional(
        &self,
        value: &Option<Spanned<String>>,
        field: &str,
        scope: Scope,
        names: &Names,
    ) -> Result<Option<Template>, AdapterFileError> {
        value
            .as_ref()
            .map(|v| self.template(v, field, scope, names))
            .transpose()
    }
}

impl Reader<'_> {
    /// `[isolation]`: known, distinct levels, and a default among them.
    fn isolation(&self, raw: &RawIsolation) -> Result<IsolationSpec, AdapterFileError> {
        let mut levels = Vec::new();
        for l in raw.levels.get_ref() {
            let level: IsolationLevel = l
                .get_ref()
                .parse()
                .map_err(|e| self.error_at(l.span(), format!("isolation.levels: {e}")))?;
            if levels.contains(&level) {
                return Err(self.error_at(
                    l.span(),
                    format!("isolation.levels: {level} is listed twice"),
                ));
            }
            levels.push(level);
        }
        if levels.is_empty() {
            return Err(self.error_at(
                raw.levels.span(),
                "isolation.levels: list at least one level",
            ));
        }
        let default: IsolationLevel =
            raw.default.get_ref().parse().map_err(|e| {
                self.error_at(raw.default.span(), format!("isolation.default: {e}"))
            })?;
        if !levels.contains(&default) {
            return Err(self.error_at(
                raw.default.span(),
                format!(
                    "isolation.default: {default} is not one of its levels ({})",
                    levels
                        .iter()
                        .map(|l| l.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(IsolationSpec { levels, default })
    }
}

impl AdapterFile {
    /// Reads and checks the adapter file at `path`.
    pub fn read(path: &Path) -> Result<AdapterFile, AdapterFileError> {
        let whole = |message: String| AdapterFileError {
            file: path.to_path_buf(),
            line: None,
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read it: {e}")))?;
        if !meta.is_file() {
            return Err(whole("not a file".into()));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(whole(format!(
                "{} bytes: an adapter file has at most {MAX_FILE_BYTES}",
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| whole(format!("cannot read it: {e}")))?;
        let raw = String::from_utf8(bytes)
            .map_err(|e| whole(format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to())))?;
        let absolute = std::path::absolute(path)
            .map_err(|e| whole(format!("cannot resolve its path: {e}")))?;
        Self::parse(&absolute, &raw).map_err(|mut e| {
            // Name the file as the user gave it.
            e.file = path.to_path_buf();
            e
        })
    }

    /// Checks the source `raw` of the file at (absolute) `path`.
    pub fn parse(path: &Path, raw: &str) -> Result<AdapterFile, AdapterFileError> {
        let reader = Reader { path, raw };
        let file: RawFile = toml::from_str(raw).map_err(|e| AdapterFileError {
            file: path.to_path_buf(),
            line: e.span().map(|s| line_of(raw, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));

        let name = file.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(reader.error_at(
                file.name.span(),
                format!("name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"),
            ));
        }

        let mut workloads = Vec::new();
        for w in file.workloads.get_ref() {
            let known = faultline_workloads::WorkloadKind::ALL.map(|k| k.name());
            if !known.contains(&w.get_ref().as_str()) {
                return Err(reader.error_at(
                    w.span(),
                    format!(
                        "workloads: {:?} is not a workload of faultline; use some of {}",
                        w.get_ref(),
                        known.join(", ")
                    ),
                ));
            }
            if !workloads.contains(w.get_ref()) {
                workloads.push(w.get_ref().clone());
            }
        }
        if workloads.is_empty() {
            return Err(reader.error_at(file.workloads.span(), "workloads: list at least one"));
        }

        let mut faults = Vec::new();
        for f in file.faults.get_ref() {
            faults.push(adapter_fault(f.get_ref()).map_err(|m| reader.error_at(f.span(), m))?);
        }
        faults.sort();
        faults.dedup();

        let max_nodes = match &file.max_nodes {
            Some(m) if *m.get_ref() == 0 || *m.get_ref() > 200 => {
                return Err(reader.error_at(
                    m.span(),
                    format!("max_nodes = {}: use 1 to 200", m.get_ref()),
                ))
            }
            Some(m) => Some(*m.get_ref()),
            None => None,
        };
        let isolation = file
            .isolation
            .as_ref()
            .map(|i| reader.isolation(i.get_ref()))
            .transpose()?;

        let mut params = BTreeMap::new();
        for (k, v) in file.params.iter().flatten() {
            if !plain_name(k) {
                return Err(reader.error_at(
                    v.span(),
                    format!("params: name {k:?}: use lowercase letters, digits, '_' and '-'"),
                ));
            }
            check_word(v.get_ref()).map_err(|why| {
                reader.error_at(
                    v.span(),
                    format!(
                        "params.{k}: the default {:?} {why}: a param is one plain word",
                        v.get_ref()
                    ),
                )
            })?;
            params.insert(k.clone(), v.get_ref().clone());
        }

        let node = file.node.get_ref();
        let mut ports = Vec::new();
        for (k, v) in node.ports.get_ref() {
            if !plain_name(k) {
                return Err(reader.error_at(
                    v.span(),
                    format!("node.ports: name {k:?}: use lowercase letters, digits, '_' and '-'"),
                ));
            }
            if *v.get_ref() == 0 {
                return Err(reader.error_at(v.span(), format!("node.ports.{k}: 0 is not a port (local mode picks free ports itself; this number is for remote hosts)")));
            }
            ports.push((k.clone(), *v.get_ref()));
        }
        if ports.is_empty() {
            return Err(reader.error_at(
                file.node.span(),
                "node.ports: name at least one port the node listens on (partitions and loss cut them)",
            ));
        }

        let mut names = Names {
            ports: ports.iter().map(|(p, _)| p.clone()).collect(),
            params: params.keys().cloned().collect(),
            lists: Vec::new(),
            isolation: isolation.is_some(),
        };
        // List items are node templates that may not use lists themselves.
        let mut lists = BTreeMap::new();
        for (k, v) in file.lists.iter().flatten() {
            if !plain_name(k) {
                return Err(reader.error_at(
                    v.span(),
                    format!("lists: name {k:?}: use lowercase letters, digits, '_' and '-'"),
                ));
            }
            let l = v.get_ref();
            let over = match l.over.as_ref().map(|o| o.get_ref().as_str()) {
                None | Some("nodes") => Over::Nodes,
                Some("peers") => Over::Peers,
                Some(other) => {
                    let span = l.over.as_ref().expect("matched Some").span();
                    return Err(reader.error_at(
                        span,
                        format!("lists.{k}.over: {other:?}: use \"nodes\" or \"peers\""),
                    ));
                }
            };
            let item = reader.template(&l.item, &format!("lists.{k}.item"), Scope::Node, &names)?;
            lists.insert(
                k.clone(),
                ListSpec {
                    over,
                    item,
                    separator: l.separator.clone().unwrap_or_else(|| ",".to_string()),
                },
            );
        }
        names.lists = lists.iter().map(|(k, l)| (k.clone(), l.over)).collect();

        let mut daemons: Vec<DaemonSpec> = Vec::new();
        for d in node.daemon.get_ref() {
            let raw_daemon = d.get_ref();
            let dname = raw_daemon.name.get_ref();
            if !plain_name(dname) {
                return Err(reader.error_at(
                    raw_daemon.name.span(),
                    format!(
                        "node.daemon: name {dname:?}: use lowercase letters, digits, '_' and '-'"
                    ),
                ));
            }
            if daemons.iter().any(|x| &x.name == dname) {
                return Err(reader.error_at(
                    raw_daemon.name.span(),
                    format!("node.daemon: two daemons named {dname:?}"),
                ));
            }
            daemons.push(DaemonSpec {
                name: dname.clone(),
                start: reader.template(
                    &raw_daemon.start,
                    &format!("node.daemon {dname:?} start"),
                    Scope::Node,
                    &names,
                )?,
            });
        }
        if daemons.is_empty() {
            return Err(reader.error_at(
                node.daemon.span(),
                "node.daemon: a node needs at least one [[node.daemon]] with a name and a start command",
            ));
        }
        let logs = node
            .logs
            .iter()
            .flatten()
            .map(|l| reader.template(l, "node.logs", Scope::Node, &names))
            .collect::<Result<Vec<_>, _>>()?;
        let node_spec = NodeSpec {
            ports,
            setup: reader.optional(&node.setup, "node.setup", Scope::Node, &names)?,
            daemons,
            ready: reader.optional(&node.ready, "node.ready", Scope::Node, &names)?,
            stop: reader.optional(&node.stop, "node.stop", Scope::Node, &names)?,
            logs,
        };

        let mut requires = Vec::new();
        for r in file.requires.iter().flatten() {
            if r.get_ref().trim().is_empty() || r.get_ref().chars().any(char::is_whitespace) {
                return Err(reader.error_at(
                    r.span(),
                    format!(
                        "requires: {:?}: name one program (a name on PATH or an absolute path)",
                        r.get_ref()
                    ),
                ));
            }
            requires.push(r.get_ref().clone());
        }

        let (primary, healthy) = match &file.cluster {
            Some(c) => (
                reader.optional(&c.primary, "cluster.primary", Scope::Cluster, &names)?,
                reader.optional(&c.healthy, "cluster.healthy", Scope::Cluster, &names)?,
            ),
            None => (None, None),
        };
        Ok(AdapterFile {
            path: path.to_path_buf(),
            dir,
            name,
            version: reader.optional(&file.version, "version", Scope::Cluster, &names)?,
            requires,
            install: reader.optional(&file.install, "install", Scope::Cluster, &names)?,
            workloads,
            faults,
            max_nodes,
            isolation,
            params,
            lists,
            node: node_spec,
            primary,
            healthy,
            client: reader.template(
                &file.client.get_ref().command,
                "client.command",
                Scope::Client,
                &names,
            )?,
        })
    }

    /// The templates that run on the hosts in remote mode: install,
    /// version (on the first host), the node's setup, daemons, stop and
    /// logs, and the list items (node commands use them).
    pub fn host_templates(&self) -> Vec<&Template> {
        let mut all: Vec<&Template> = Vec::new();
        all.extend(self.install.iter());
        all.extend(self.version.iter());
        all.extend(self.node.setup.iter());
        all.extend(self.node.daemons.iter().map(|d| &d.start));
        all.extend(self.node.stop.iter());
        all.extend(self.node.logs.iter());
        all.extend(self.lists.values().map(|l| &l.item));
        all
    }

    /// The params with `--param NAME=VALUE` overrides applied; an unknown
    /// name or a value that is not one plain word is refused.
    pub fn params_with(
        &self,
        overrides: &[(String, String)],
    ) -> Result<BTreeMap<String, String>, String> {
        let mut params = self.params.clone();
        for (k, v) in overrides {
            let Some(slot) = params.get_mut(k) else {
                return Err(format!(
                    "--param {k}={v}: {} declares no param {k:?} (its params: {})",
                    self.path.display(),
                    if self.params.is_empty() {
                        "none".to_string()
                    } else {
                        self.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ));
            };
            check_word(v).map_err(|why| {
                format!("--param {k}={v:?}: the value {why}: a param is one plain word")
            })?;
            *slot = v.clone();
        }
        Ok(params)
    }

    /// The isolation level of a run that asks for `requested` (None: the
    /// file's default): one of the file's levels, or None for a file that
    /// declares none. A level the file does not take is refused, naming
    /// the ones it does.
    pub fn isolation_level(
        &self,
        requested: Option<IsolationLevel>,
    ) -> Result<Option<IsolationLevel>, String> {
        match (&self.isolation, requested) {
            (None, None) => Ok(None),
            (Some(spec), None) => Ok(Some(spec.default)),
            (Some(spec), Some(level)) if spec.levels.contains(&level) => Ok(Some(level)),
            (Some(spec), Some(level)) => Err(format!(
                "--isolation {level}: {} takes {} (its [isolation] levels)",
                self.path.display(),
                spec.levels
                    .iter()
                    .map(|l| l.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            (None, Some(level)) => Err(format!(
                "--isolation {level}: {} declares no [isolation] levels, so {} runs at the one it has; \
                 run without --isolation",
                self.path.display(),
                self.name
            )),
        }
    }

    /// The port names, in the file's order.
    pub fn port_names(&self) -> Vec<String> {
        self.node.ports.iter().map(|(p, _)| p.clone()).collect()
    }
}

/// A fault kind an adapter may list, or why not.
fn adapter_fault(word: &str) -> Result<FaultKind, String> {
    match FaultKind::ALL.iter().find(|k| k.as_str() == word) {
        Some(k) if ADAPTER_FAULTS.contains(k) => Ok(*k),
        Some(FaultKind::Latency) => Err(
            "faults: latency is not available through an adapter: faultline delays messages with its own node's filter, \
             and tc netem on lo would delay the clients too"
                .to_string(),
        ),
        Some(FaultKind::Membership) => Err(
            "faults: membership needs faultline's own node's admin operations; an adapter has none".to_string(),
        ),
        Some(FaultKind::SlowReader) => Err(
            "faults: slow-reader writes faultline's own node's wire protocol; an adapter's client speaks its own".to_string(),
        ),
        _ => Err(format!(
            "faults: {word:?} is not a fault; an adapter may list {}",
            ADAPTER_FAULTS.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
version = "demo-server --version"
requires = ["demo-server"]
workloads = ["set", "register"]
faults = ["partition", "kill", "pause"]

[params]
quorum = "2"

[lists.cluster]
item = "{{name}}={{addr.peer}}"

[node]
ports = { client = 7000, peer = 7100 }
setup = """
mkdir -p {{data_dir}}
echo {{param.quorum}} > {{data_dir}}/q
"""
ready = "nc -z {{ip}} {{port.client}}"
logs = ["{{data_dir}}/demo.log"]

[[node.daemon]]
name = "server"
start = "exec demo-server --listen {{addr.client}} --cluster {{list.cluster}}"

[cluster]
primary = "demo-cli --at {{nodes.addr.client}} leader"

[client]
command = "python3 {{adapter_dir}}/client.py {{worker}}"
"#;

    fn parse(raw: &str) -> Result<AdapterFile, AdapterFileError> {
        AdapterFile::parse(Path::new("/ad/demo.toml"), raw)
    }

    #[test]
    fn a_good_file_reads_into_its_parts() {
        let a = parse(GOOD).expect("parses");
        assert_eq!(a.name, "demo");
        assert_eq!(a.dir, Path::new("/ad"));
        assert_eq!(a.workloads, ["set", "register"]);
        assert_eq!(
            a.faults,
            [FaultKind::Partition, FaultKind::Kill, FaultKind::Pause]
        );
        assert_eq!(
            a.node.ports,
            [("client".to_string(), 7000), ("peer".to_string(), 7100)]
        );
        assert_eq!(a.node.daemons.len(), 1);
        assert_eq!(a.node.daemons[0].start.origin().line, 25);
        assert!(a.node.setup.is_some() && a.primary.is_some() && a.healthy.is_none());
        assert_eq!(a.params["quorum"], "2");
        let p = a
            .params_with(&[("quorum".into(), "3".into())])
            .expect("known param");
        assert_eq!(p["quorum"], "3");
        let e = a
            .params_with(&[("bug".into(), "x".into())])
            .expect_err("unknown param");
        assert!(
            e.contains("declares no param \"bug\" (its params: quorum)"),
            "{e}"
        );
        let e = a
            .params_with(&[("quorum".into(), "2; rm".into())])
            .expect_err("not a word");
        assert!(e.contains("one plain word"), "{e}");
    }

    fn error(raw: &str) -> String {
        parse(raw).expect_err("must be refused").to_string()
    }

    #[test]
    fn a_missing_required_field_names_the_file_line_and_field() {
        let without_client = GOOD.replace(
            "[client]\ncommand = \"python3 {{adapter_dir}}/client.py {{worker}}\"\n",
            "",
        );
        let e = error(&without_client);
        assert!(e.starts_with("/ad/demo.toml:"), "{e}");
        assert!(e.contains("missing field `client`"), "{e}");
        let without_start = GOOD.replace(
            "start = \"exec demo-server --listen {{addr.client}} --cluster {{list.cluster}}\"\n",
            "",
        );
        let e = error(&without_start);
        assert!(e.starts_with("/ad/demo.toml:23:"), "{e}");
        assert!(e.contains("missing field `start`"), "{e}");
        let e = error(&GOOD.replace("ports = { client = 7000, peer = 7100 }", "ports = {}"));
        assert!(e.contains("node.ports: name at least one port"), "{e}");
    }

    #[test]
    fn an_unknown_placeholder_names_the_file_and_its_line() {
        let e = error(&GOOD.replace("echo {{param.quorum}}", "echo {{param.qorum}}"));
        assert!(
            e.starts_with(
                "/ad/demo.toml:18: node.setup: {{param.qorum}}: no param named \"qorum\""
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("{{addr.client}} --cluster", "{{adr.client}} --cluster"));
        assert!(e.starts_with("/ad/demo.toml:25: node.daemon \"server\" start: {{adr.client}}: unknown placeholder"), "{e}");
        let e = error(&GOOD.replace("client.py {{worker}}", "client.py {{data_dir}}"));
        assert!(
            e.starts_with("/ad/demo.toml:31: client.command: {{data_dir}}"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_workloads_and_faults_are_refused_with_the_reason() {
        let e = error(&GOOD.replace("[cluster]", "[cluster]\nleader = \"x\""));
        assert!(
            e.contains(":28:") && e.contains("unknown field `leader`"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"set\", \"register\"", "\"set\", \"queue\""));
        assert!(
            e.starts_with("/ad/demo.toml:5: workloads: \"queue\" is not a workload"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"pause\"]", "\"latency\"]"));
        assert!(
            e.contains(":6: faults: latency is not available through an adapter"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"pause\"]", "\"slow-reader\"]"));
        assert!(
            e.contains(":6: faults: slow-reader writes faultline's own node's wire protocol"),
            "{e}"
        );
        let e = error(&GOOD.replace("\"pause\"]", "\"flood\"]"));
        assert!(
            e.contains(
                "\"flood\" is not a fault; an adapter may list partition, loss, kill, pause, clock"
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("client = 7000", "client = 70000"));
        assert!(e.contains(":15:"), "{e}");
        let e = error(&GOOD.replace("name = \"server\"", "name = \"Server X\""));
        assert!(e.contains("node.daemon: name \"Server X\""), "{e}");
        let e = error("name = \"x\"\nworkloads = [\"set\"\n");
        assert!(e.starts_with("/ad/demo.toml:"), "{e}");
    }

    #[test]
    fn max_nodes_and_isolation_levels_are_read_and_checked() {
        let a = parse(GOOD).expect("parses");
        assert_eq!((a.max_nodes, &a.isolation), (None, &None));
        assert_eq!(a.isolation_level(None), Ok(None));
        let e = a
            .isolation_level(Some(IsolationLevel::Serializable))
            .expect_err("no levels declared");
        assert!(
            e.contains("--isolation serializable: /ad/demo.toml declares no [isolation] levels"),
            "{e}"
        );
        let with = GOOD.replace(
            "[params]",
            "max_nodes = 1\n\n[isolation]\nlevels = [\"read-committed\", \"serializable\"]\ndefault = \"serializable\"\n\n[params]",
        )
        .replace("client.py {{worker}}", "client.py {{worker}} {{isolation}}");
        let a = parse(&with).expect("parses");
        assert_eq!(a.max_nodes, Some(1));
        assert_eq!(
            a.isolation,
            Some(IsolationSpec {
                levels: vec![IsolationLevel::ReadCommitted, IsolationLevel::Serializable],
                default: IsolationLevel::Serializable,
            })
        );
        assert_eq!(
            a.isolation_level(None),
            Ok(Some(IsolationLevel::Serializable))
        );
        assert_eq!(
            a.isolation_level(Some(IsolationLevel::ReadCommitted)),
            Ok(Some(IsolationLevel::ReadCommitted))
        );
        let e = a
            .isolation_level(Some(IsolationLevel::RepeatableRead))
            .expect_err("not one of its levels");
        assert!(
            e.contains("/ad/demo.toml takes read-committed, serializable"),
            "{e}"
        );
        let e = error(&with.replace(
            "default = \"serializable\"",
            "default = \"repeatable-read\"",
        ));
        assert!(
            e.contains(":12: isolation.default: repeatable-read is not one of its levels (read-committed, serializable)"),
            "{e}"
        );
        let e = error(&with.replace("\"read-committed\",", "\"read-comitted\","));
        assert!(
            e.contains(":11: isolation.levels: \"read-comitted\" is not an isolation level"),
            "{e}"
        );
        let e = error(&with.replace("max_nodes = 1", "max_nodes = 0"));
        assert!(e.contains(":8: max_nodes = 0: use 1 to 200"), "{e}");
        // Without [isolation], {{isolation}} is an unknown value.
        let e = error(&GOOD.replace("client.py {{worker}}", "client.py {{isolation}}"));
        assert!(e.contains("the file declares no [isolation] levels"), "{e}");
    }

    #[test]
    fn lists_cannot_nest_and_peer_lists_stay_in_node_commands() {
        let e = error(&GOOD.replace(
            "item = \"{{name}}={{addr.peer}}\"",
            "item = \"{{list.cluster}}\"",
        ));
        assert!(
            e.contains("lists.cluster.item: {{list.cluster}}: no list named"),
            "{e}"
        );
        let peers = GOOD.replace("[lists.cluster]\n", "[lists.cluster]\nover = \"peers\"\n");
        let e = error(&peers.replace(
            "primary = \"demo-cli --at {{nodes.addr.client}} leader\"",
            "primary = \"demo-cli {{list.cluster}}\"",
        ));
        assert!(e.contains("cluster.primary: {{list.cluster}}"), "{e}");
    }

    #[test]
    fn the_shipped_example_adapters_read() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/adapters");
        let mut read = 0;
        for entry in std::fs::read_dir(&examples).expect("examples/adapters exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                AdapterFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
                read += 1;
            }
        }
        assert!(read >= 1, "no example adapter in {}", examples.display());
    }
}
