//! The user's OpenSSH client configuration (`~/.ssh/config`, or the file
//! given with `--ssh-config`): the hosts people already reach with `ssh n1`
//! are reached by the same name here, with the same HostName, User, Port,
//! IdentityFile and ProxyJump.
//!
//! Semantics are OpenSSH's (ssh_config(5)): keywords are case-insensitive,
//! `Key value` or `Key=value`, arguments may be quoted; `Host` takes
//! patterns with `*`, `?` and `!negation`; for each option the first value
//! obtained wins, except IdentityFile, which accumulates; `Include` reads
//! other files (relative to ~/.ssh, `*` globs allowed) in place; `Match all`,
//! `Match host` and `Match originalhost` are understood, other `Match`
//! criteria make the block not apply. `%h %p %r %u %n %d %%` and `~` are
//! expanded in IdentityFile and HostName. Keywords faultline has no use for
//! are read and ignored, as ssh ignores what it does not need.
//!
//! Guarantee: a malformed file is an error naming the file and line; this
//! module never reads the network and never panics on its input.

use std::fmt;
use std::path::{Path, PathBuf};

/// How deep `Include` may nest (OpenSSH's limit as well).
const MAX_INCLUDE_DEPTH: usize = 16;

/// A parsed configuration: its blocks in file order (includes inlined).
#[derive(Clone, Debug, Default)]
pub struct OpenSshConfig {
    blocks: Vec<Block>,
}

#[derive(Clone, Debug)]
struct Block {
    condition: Condition,
    options: Vec<Setting>,
}

#[derive(Clone, Debug)]
enum Condition {
    /// Before any Host or Match line, and `Match all`.
    Always,
    Host(Vec<Pattern>),
    /// `Match host` (against the HostName found so far).
    MatchHost(Vec<Pattern>),
    /// `Match originalhost` (against the name as given).
    MatchOriginalHost(Vec<Pattern>),
    /// A Match criterion faultline cannot evaluate: the block never applies.
    Never,
}

#[derive(Clone, Debug)]
struct Pattern {
    negated: bool,
    glob: String,
}

#[derive(Clone, Debug)]
struct Setting {
    key: Key,
    value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    HostName,
    User,
    Port,
    IdentityFile,
    IdentitiesOnly,
    ProxyJump,
    UserKnownHostsFile,
    ConnectTimeout,
}

/// What the configuration says about one host (unset: not said).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostOptions {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    /// `ProxyJump` as written (`none` is `None`).
    pub proxy_jump: Option<String>,
    pub user_known_hosts_file: Option<PathBuf>,
    pub connect_timeout_s: Option<u64>,
}

/// A malformed configuration: where and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{} line {}: {}",
                self.file.display(),
                self.line,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

impl OpenSshConfig {
    /// Reads `path` (and what it includes). `home` is where `~` and
    /// relative includes (`home/.ssh/...`) point.
    pub fn load(path: &Path, home: &Path) -> Result<OpenSshConfig, ConfigError> {
        let mut config = OpenSshConfig::default();
        config.read_file(path, home, 0, Condition::Always)?;
        Ok(config)
    }

    /// Parses `text` as if it were the file `file`.
    pub fn parse(text: &str, file: &Path, home: &Path) -> Result<OpenSshConfig, ConfigError> {
        let mut config = OpenSshConfig::default();
        config.read_text(text, file, home, 0, Condition::Always)?;
        Ok(config)
    }

    fn read_file(
        &mut self,
        path: &Path,
        home: &Path,
        depth: usize,
        start: Condition,
    ) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            message: e.to_string(),
        })?;
        self.read_text(&text, path, home, depth, start)
    }

    fn read_text(
        &mut self,
        text: &str,
        file: &Path,
        home: &Path,
        depth: usize,
        start: Condition,
    ) -> Result<(), ConfigError> {
        // Lines before the first Host or Match apply to every host; an
        // included file's leading lines belong to the block it is read in.
        let mut current = Block {
            condition: start,
            options: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |message: String| ConfigError {
                file: file.to_path_buf(),
                line,
                message,
            };
            let Some((keyword, args)) = split_line(raw).map_err(err)? else {
                continue;
            };
            match keyword.to_ascii_lowercase().as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(err("Host needs at least one pattern".into()));
                    }
                    self.blocks.push(std::mem::replace(
                        &mut current,
                        Block {
                            condition: Condition::Host(patterns(&args)),
                            options: Vec::new(),
                        },
                    ));
                }
                "match" => {
                    let condition = match_condition(&args).map_err(err)?;
                    self.blocks.push(std::mem::replace(
                        &mut current,
                        Block {
                            condition,
                            options: Vec::new(),
                        },
                    ));
                }
                "include" => {
                    if depth >= MAX_INCLUDE_DEPTH {
                        return Err(err(format!(
                            "Include nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)"
                        )));
                    }
                    // After the included files, this file's block goes on.
                    let condition = current.condition.clone();
                    self.blocks.push(std::mem::replace(
                        &mut current,
                        Block {
                            condition: condition.clone(),
                            options: Vec::new(),
                        },
                    ));
                    for arg in &args {
                        for path in include_paths(arg, home).map_err(err)? {
                            self.read_file(&path, home, depth + 1, condition.clone())?;
                        }
                    }
                }
                other => {
                    let Some(key) = key_of(other) else { continue };
                    let value = args
                        .first()
                        .ok_or_else(|| err(format!("{keyword} needs a value")))?;
                    check_value(key, value).map_err(err)?;
                    current.options.push(Setting {
                        key,
                        value: value.clone(),
                    });
                }
            }
        }
        self.blocks.push(current);
        Ok(())
    }

    /// The options for `alias` (the name as the user wrote it), OpenSSH's
    /// way: first value wins, IdentityFile accumulates, `%` tokens expanded
    /// with `local_user` for `%u` and `home` for `~` and `%d`.
    pub fn lookup(&self, alias: &str, local_user: &str, home: &Path) -> HostOptions {
        let mut found = HostOptions::default();
        let mut seen: Vec<Key> = Vec::new();
        let mut identity_files: Vec<String> = Vec::new();
        for block in &self.blocks {
            let applies = match &block.condition {
                Condition::Always => true,
                Condition::Never => false,
                Condition::Host(p) | Condition::MatchOriginalHost(p) => matches_all(p, alias),
                Condition::MatchHost(p) => {
                    matches_all(p, found.host_name.as_deref().unwrap_or(alias))
                }
            };
            if !applies {
                continue;
            }
            for s in &block.options {
                if s.key == Key::IdentityFile {
                    identity_files.push(s.value.clone());
                    continue;
                }
                if seen.contains(&s.key) {
                    continue;
                }
                seen.push(s.key);
                let v = s.value.as_str();
                match s.key {
                    Key::HostName => found.host_name = Some(v.to_string()),
                    Key::User => found.user = Some(v.to_string()),
                    Key::Port => found.port = v.parse().ok(),
                    Key::IdentitiesOnly => found.identities_only = v.eq_ignore_ascii_case("yes"),
                    Key::ProxyJump => {
                        found.proxy_jump = (!v.eq_ignore_ascii_case("none")).then(|| v.to_string())
                    }
                    Key::UserKnownHostsFile => {
                        found.user_known_hosts_file = Some(PathBuf::from(tilde(v, home)))
                    }
                    Key::ConnectTimeout => found.connect_timeout_s = v.parse().ok(),
                    Key::IdentityFile => unreachable!("handled above"),
                }
            }
        }
        let mut tokens = Tokens {
            alias,
            host: alias.to_string(),
            port: found.port.unwrap_or(22),
            remote_user: found.user.clone().unwrap_or_else(|| local_user.to_string()),
            local_user,
            home,
        };
        // HostName's own `%h` is the alias; everywhere else it is HostName.
        if let Some(h) = &found.host_name {
            let expanded = tokens.expand(h, alias);
            tokens.host = expanded.clone();
            found.host_name = Some(expanded);
        }
        found.identity_files = identity_files
            .iter()
            .filter(|f| !f.eq_ignore_ascii_case("none"))
            .map(|f| PathBuf::from(tokens.expand(&tilde(f, home), &tokens.host)))
            .collect();
        found
    }
}

/// The values `%` tokens stand for.
struct Tokens<'a> {
    alias: &'a str,
    host: String,
    port: u16,
    remote_user: String,
    local_user: &'a str,
    home: &'a Path,
}

impl Tokens<'_> {
    /// Expands `%h` (to `host_for_h`), `%n %p %r %u %d %%`; an unknown
    /// token is left as written.
    fn expand(&self, text: &str, host_for_h: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('h') => out.push_str(host_for_h),
                Some('n') => out.push_str(self.alias),
                Some('p') => out.push_str(&self.port.to_string()),
                Some('r') => out.push_str(&self.remote_user),
                Some('u') => out.push_str(self.local_user),
                Some('d') => out.push_str(&self.home.display().to_string()),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

fn tilde(path: &str, home: &Path) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest).display().to_string(),
        None if path == "~" => home.display().to_string(),
        None => path.to_string(),
    }
}

/// Splits a line into its keyword and arguments; `None` for blank lines
/// and comments.
fn split_line(raw: &str) -> Result<Option<(String, Vec<String>)>, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    // The keyword ends at whitespace or '='; one '=' may separate it.
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let keyword = line[..end].to_string();
    let mut rest = line[end..].trim_start();
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start();
    }
    let mut args = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        if first == '#' {
            break; // a trailing comment
        }
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                arg.push(c);
            }
            if !closed {
                return Err(format!("unterminated quote in {line:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                arg.push(c);
                chars.next();
            }
        }
        args.push(arg);
    }
    Ok(Some((keyword, args)))
}

fn key_of(keyword: &str) -> Option<Key> {
    Some(match keyword {
        "hostname" => Key::HostName,
        "user" => Key::User,
        "port" => Key::Port,
        "identityfile" => Key::IdentityFile,
        "identitiesonly" => Key::IdentitiesOnly,
        "proxyjump" => Key::ProxyJump,
        "userknownhostsfile" => Key::UserKnownHostsFile,
        "connecttimeout" => Key::ConnectTimeout,
        _ => return None,
    })
}

fn check_value(key: Key, value: &str) -> Result<(), String> {
    match key {
        Key::Port => match value.parse::<u16>() {
            Ok(p) if p > 0 => Ok(()),
            _ => Err(format!("Port {value:?} is not a port (1-65535)")),
        },
        Key::ConnectTimeout => value
            .parse::<u64>()
            .map(|_| ())
            .map_err(|_| format!("ConnectTimeout {value:?} is not a number of seconds")),
        Key::IdentitiesOnly => match value.to_ascii_lowercase().as_str() {
            "yes" | "no" => Ok(()),
            _ => Err(format!("IdentitiesOnly {value:?}: yes or no")),
        },
        _ => Ok(()),
    }
}

fn patterns(args: &[String]) -> Vec<Pattern> {
    args.iter()
        .flat_map(|a| a.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| match p.strip_prefix('!') {
            Some(glob) => Pattern {
                negated: true,
                glob: glob.to_string(),
            },
            None => Pattern {
                negated: false,
                glob: p.to_string(),
            },
        })
        .collect()
}

/// OpenSSH's rule: some positive pattern matches and no negated one does.
fn matches_all(patterns: &[Pattern], name: &str) -> bool {
    let mut positive = false;
    for p in patterns {
        if glob_match(&p.glob.to_ascii_lowercase(), &name.to_ascii_lowercase()) {
            if p.negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// `*` any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn match_condition(args: &[String]) -> Result<Condition, String> {
    let Some(first) = args.first() else {
        return Err("Match needs a criterion".into());
    };
    match first.to_ascii_lowercase().as_str() {
        "all" if args.len() == 1 => Ok(Condition::Always),
        "host" | "originalhost" => {
            let list = args
                .get(1)
                .ok_or_else(|| format!("Match {first} needs a pattern list"))?;
            if args.len() > 2 {
                return Ok(Condition::Never);
            }
            let p = patterns(std::slice::from_ref(list));
            Ok(if first.eq_ignore_ascii_case("host") {
                Condition::MatchHost(p)
            } else {
                Condition::MatchOriginalHost(p)
            })
        }
        _ => Ok(Condition::Never),
    }
}

/// The files an `Include` argument names: `~` expanded, relative to
/// `home/.ssh`, a `*` or `?` in the file name globbed (sorted, as ssh does).
fn include_paths(arg: &str, home: &Path) -> Result<Vec<PathBuf>, String> {
    let expanded = tilde(arg, home);
    let path = if Path::new(&expanded).is_absolute() {
        PathBuf::from(expanded)
    } else {
        home.join(".ssh").join(expanded)
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("Include {arg:?}: no file name"))?
        .to_string();
    if !name.contains(['*', '?']) {
        // A missing include is not an error for ssh either.
        return Ok(if path.exists() {
            vec![path]
        } else {
            Vec::new()
        });
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> OpenSshConfig {
        OpenSshConfig::parse(text, Path::new("/home/u/.ssh/config"), Path::new("/home/u"))
            .expect("parses")
    }

    fn lookup(text: &str, alias: &str) -> HostOptions {
        parse(text).lookup(alias, "alice", Path::new("/home/u"))
    }

    #[test]
    fn aliases_get_host_name_user_port_and_key() {
        let text = "\
# the lab
Host n1 n2
    HostName 10.77.0.1%n
    User tester
    Port 2222
    IdentityFile ~/.ssh/lab_key

Host n*
    User ignored-first-wins
    IdentityFile ~/.ssh/%r-%h
    ProxyJump bastion

Host *
    Port 22
    IdentitiesOnly yes
";
        let n1 = lookup(text, "n1");
        assert_eq!(n1.host_name.as_deref(), Some("10.77.0.1n1"));
        assert_eq!(n1.user.as_deref(), Some("tester"));
        assert_eq!(n1.port, Some(2222));
        assert_eq!(
            n1.identity_files,
            vec![
                PathBuf::from("/home/u/.ssh/lab_key"),
                PathBuf::from("/home/u/.ssh/tester-10.77.0.1n1")
            ]
        );
        assert_eq!(n1.proxy_jump.as_deref(), Some("bastion"));
        assert!(n1.identities_only);
        let other = lookup(text, "db");
        assert_eq!(other.host_name, None);
        assert_eq!(other.user, None);
        assert_eq!(other.port, Some(22));
        assert!(other.identity_files.is_empty());
    }

    #[test]
    fn negated_patterns_and_equals_and_quotes() {
        let text = "Host *.lab !bad.lab\n  User=\"lab user\"\nHost=bad.lab\n  Port=2200\n";
        assert_eq!(lookup(text, "a.lab").user.as_deref(), Some("lab user"));
        assert_eq!(lookup(text, "bad.lab").user, None);
        assert_eq!(lookup(text, "bad.lab").port, Some(2200));
        assert_eq!(lookup(text, "A.LAB").user.as_deref(), Some("lab user"));
    }

    #[test]
    fn leading_lines_apply_to_every_host_and_match_blocks() {
        let text = "User everyone\nHost x\n  HostName real-x\nMatch host real-*\n  Port 2022\nMatch exec \"true\"\n  Port 1\nMatch all\n  ProxyJump none\n";
        let x = lookup(text, "x");
        assert_eq!(x.user.as_deref(), Some("everyone"));
        assert_eq!(x.port, Some(2022), "Match host sees the HostName");
        assert_eq!(x.proxy_jump, None);
        assert_eq!(lookup(text, "y").port, None, "Match exec never applies");
    }

    #[test]
    fn includes_are_read_in_place_relative_to_dot_ssh() {
        let home = tempfile::tempdir().expect("tempdir");
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).expect("mkdir");
        std::fs::write(ssh.join("conf.d/10-lab"), "Host n1\n  User from-include\n").expect("w");
        std::fs::write(ssh.join("conf.d/20-other"), "Host n1\n  Port 2001\n").expect("w");
        std::fs::write(ssh.join("in-block"), "User in-block\nHost zz\n  Port 9\n").expect("w");
        std::fs::write(
            ssh.join("config"),
            "Include conf.d/*\nInclude missing-file\nHost n1\n  User later\n  HostName n1.example\nHost n2\n  Include in-block\n  Port 2002\n",
        )
        .expect("w");
        let c = OpenSshConfig::load(&ssh.join("config"), home.path()).expect("loads");
        let n1 = c.lookup("n1", "alice", home.path());
        assert_eq!(n1.user.as_deref(), Some("from-include"));
        assert_eq!(n1.port, Some(2001));
        assert_eq!(n1.host_name.as_deref(), Some("n1.example"));
        // An include inside a Host block: its leading lines belong to that
        // block, and the including block goes on after it.
        let n2 = c.lookup("n2", "alice", home.path());
        assert_eq!(n2.user.as_deref(), Some("in-block"));
        assert_eq!(n2.port, Some(2002));
        assert_eq!(c.lookup("zz", "alice", home.path()).user, None);
        // An include loop is an error naming the file, not a stack overflow.
        std::fs::write(ssh.join("loop"), "Include loop\n").expect("w");
        let err = OpenSshConfig::load(&ssh.join("loop"), home.path()).expect_err("loop");
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn bad_values_name_file_and_line() {
        for (text, want) in [
            ("Host a\n  Port 99999\n", "line 2: Port \"99999\""),
            ("Host\n", "line 1: Host needs"),
            ("Host a\n  User\n", "line 2: User needs a value"),
            ("Host a\n  User \"x\n", "line 2: unterminated quote"),
            ("Match\n", "line 1: Match needs"),
        ] {
            let err = OpenSshConfig::parse(text, Path::new("cfg"), Path::new("/h"))
                .expect_err(text)
                .to_string();
            assert!(
                err.starts_with("cfg ") && err.contains(want),
                "{text:?}: {err}"
            );
        }
        let err = OpenSshConfig::load(Path::new("/nonexistent/config"), Path::new("/h"))
            .expect_err("missing");
        assert!(err.to_string().starts_with("/nonexistent/config:"), "{err}");
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("n?", "n1"));
        assert!(!glob_match("n?", "n12"));
        assert!(glob_match("*.lab", "a.b.lab"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("10.77.0.*", "10.77.0.11"));
    }
}
