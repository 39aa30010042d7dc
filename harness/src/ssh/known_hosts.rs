//! OpenSSH `known_hosts` files: parse, look up a host's key, record a new one.
//!
//! Guarantees: a host whose presented key differs from a recorded key of the
//! same type is [`HostKeyStatus::Changed`] (never silently accepted); a key
//! marked `@revoked` is refused; hashed names (`|1|salt|hmac`), `[host]:port`,
//! comma lists, `*`/`?` wildcards and `!negation` match as OpenSSH matches
//! them. `@cert-authority` lines are skipped (the harness does not use host
//! certificates). A malformed line is skipped with its line number kept for
//! messages, as OpenSSH does, never a panic.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One usable line of a known_hosts file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file, for messages.
    pub line: usize,
    pub revoked: bool,
    pub patterns: Patterns,
    pub key_type: String,
    pub key: Vec<u8>,
}

/// The host part of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Patterns {
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed by the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns, some maybe negated with `!`.
    List(Vec<String>),
}

/// What the file says about a host and the key it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostKeyStatus {
    Match {
        line: usize,
    },
    /// No line names this host with a key of this type.
    Unknown,
    /// A line names this host with a different key of the same type.
    Changed {
        line: usize,
    },
    Revoked {
        line: usize,
    },
}

/// A parsed known_hosts file.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
    /// Lines that could not be parsed (1-based), kept for diagnostics.
    pub skipped_lines: Vec<usize>,
}

/// The name a host is looked up and recorded under: `host` on port 22,
/// `[host]:port` elsewhere (OpenSSH's rule).
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// The key type named inside an SSH wire-format public key blob.
pub fn blob_key_type(key: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(key.get(0..4)?.try_into().ok()?) as usize;
    let name = key.get(4..4usize.checked_add(len)?)?;
    String::from_utf8(name.to_vec()).ok()
}

impl KnownHosts {
    /// Reads `path`; a missing file is an empty list (as for OpenSSH).
    pub fn load(path: &Path) -> std::io::Result<KnownHosts> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(KnownHosts::parse(path, &text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts {
                path: path.to_path_buf(),
                ..Default::default()
            }),
            Err(e) => Err(e),
        }
    }

    pub fn parse(path: &Path, text: &str) -> KnownHosts {
        let mut kh = KnownHosts {
            path: path.to_path_buf(),
            ..Default::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match parse_line(line, trimmed) {
                Some(Some(e)) => kh.entries.push(e),
                Some(None) => {} // a line we understand and ignore (@cert-authority)
                None => kh.skipped_lines.push(line),
            }
        }
        kh
    }

    /// Looks up `host` (already in [`lookup_name`] form) and the key it
    /// presented (an SSH wire-format blob).
    pub fn check(&self, name: &str, key: &[u8]) -> HostKeyStatus {
        let key_type = blob_key_type(key).unwrap_or_default();
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.patterns.matches(name))
            .collect();
        if let Some(e) = matching.iter().find(|e| e.revoked && e.key == key) {
            return HostKeyStatus::Revoked { line: e.line };
        }
        if let Some(e) = matching.iter().find(|e| !e.revoked && e.key == key) {
            return HostKeyStatus::Match { line: e.line };
        }
        if let Some(e) = matching
            .iter()
            .find(|e| !e.revoked && e.key_type == key_type)
        {
            return HostKeyStatus::Changed { line: e.line };
        }
        HostKeyStatus::Unknown
    }

    /// Key types recorded for `name`, in file order, so the connection can
    /// ask the server for a key type we can verify.
    pub fn key_types_for(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self
            .entries
            .iter()
            .filter(|e| !e.revoked && e.patterns.matches(name))
        {
            if !out.contains(&e.key_type) {
                out.push(e.key_type.clone());
            }
        }
        out
    }

    /// Appends `name keytype base64` to the file (creating it and its folder,
    /// mode 0600), and to this in-memory list.
    pub fn append(&mut self, name: &str, key: &[u8]) -> std::io::Result<()> {
        let key_type = blob_key_type(key).unwrap_or_else(|| "unknown".into());
        let text = format!("{name} {key_type} {}\n", B64.encode(key));
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&self.path)?;
        // Make sure we start on a fresh line even if the file lacks a final newline.
        let needs_newline = std::fs::read(&self.path)
            .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
            .unwrap_or(false);
        if needs_newline {
            f.write_all(b"\n")?;
        }
        f.write_all(text.as_bytes())?;
        let line = std::fs::read_to_string(&self.path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        self.entries.push(Entry {
            line,
            revoked: false,
            patterns: Patterns::List(vec![name.to_string()]),
            key_type,
            key: key.to_vec(),
        });
        Ok(())
    }
}

/// `None`: malformed. `Some(None)`: valid but not for us. `Some(Some(e))`: an entry.
fn parse_line(line: usize, text: &str) -> Option<Option<Entry>> {
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if first.starts_with('@') {
        match first {
            "@revoked" => revoked = true,
            "@cert-authority" => return Some(None),
            _ => return None,
        }
        first = fields.next()?;
    }
    let key_type = fields.next()?.to_string();
    let key = B64.decode(fields.next()?).ok()?;
    if blob_key_type(&key).as_deref() != Some(key_type.as_str()) {
        return None;
    }
    let patterns = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        Patterns::Hashed {
            salt: B64.decode(salt).ok()?,
            hash: B64.decode(hash).ok()?,
        }
    } else {
        let list: Vec<String> = first
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        if list.is_empty() {
            return None;
        }
        Patterns::List(list)
    };
    Some(Some(Entry {
        line,
        revoked,
        patterns,
        key_type,
        key,
    }))
}

impl Patterns {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Patterns::Hashed { salt, hash } => {
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt)
                    .expect("HMAC takes a key of any length");
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Patterns::List(list) => {
                let name = name.to_ascii_lowercase();
                let mut positive = false;
                for p in list {
                    let p = p.to_ascii_lowercase();
                    if let Some(neg) = p.strip_prefix('!') {
                        if wildcard(neg.as_bytes(), name.as_bytes()) {
                            return false;
                        }
                    } else if wildcard(p.as_bytes(), name.as_bytes()) {
                        positive = true;
                    }
                }
                positive
            }
        }
    }
}

/// `*` matches any run, `?` any one byte.
fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = i;
            p += 1;
        } else if let Some(sp) = star {
            p = sp + 1;
            mark += 1;
            i = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wire-format blob: string type, then some key bytes.
    fn blob(ty: &str, body: &[u8]) -> Vec<u8> {
        let mut v = (ty.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(ty.as_bytes());
        v.extend_from_slice(body);
        v
    }

    fn line(host: &str, key: &[u8]) -> String {
        format!("{host} {} {}", blob_key_type(key).unwrap(), B64.encode(key))
    }

    #[test]
    fn plain_names_ports_lists_and_wildcards() {
        let k1 = blob("ssh-ed25519", b"one");
        let k2 = blob("ssh-ed25519", b"two");
        let text = format!(
            "# comment\n\n{}\n{}\n{}\n",
            line("10.77.0.11,fl-lab-1", &k1),
            line("[10.77.0.12]:2222", &k2),
            line("10.77.1.*,!10.77.1.5", &k1),
        );
        let kh = KnownHosts::parse(Path::new("kh"), &text);
        assert_eq!(kh.entries.len(), 3);
        assert!(kh.skipped_lines.is_empty());
        assert_eq!(
            kh.check("10.77.0.11", &k1),
            HostKeyStatus::Match { line: 3 }
        );
        assert_eq!(
            kh.check("FL-LAB-1", &k1),
            HostKeyStatus::Match { line: 3 },
            "names are case-insensitive"
        );
        assert_eq!(
            kh.check(&lookup_name("10.77.0.12", 2222), &k2),
            HostKeyStatus::Match { line: 4 }
        );
        assert_eq!(
            kh.check(&lookup_name("10.77.0.12", 22), &k2),
            HostKeyStatus::Unknown,
            "port 22 is a different name"
        );
        assert_eq!(kh.check("10.77.1.7", &k1), HostKeyStatus::Match { line: 5 });
        assert_eq!(
            kh.check("10.77.1.5", &k1),
            HostKeyStatus::Unknown,
            "negation excludes the host"
        );
    }

    #[test]
    fn a_different_key_of_the_same_type_is_changed_and_of_another_type_unknown() {
        let old = blob("ssh-ed25519", b"old");
        let new = blob("ssh-ed25519", b"new");
        let rsa = blob("ssh-rsa", b"rsa");
        let kh = KnownHosts::parse(Path::new("kh"), &format!("{}\n", line("h", &old)));
        assert_eq!(kh.check("h", &new), HostKeyStatus::Changed { line: 1 });
        assert_eq!(kh.check("h", &rsa), HostKeyStatus::Unknown);
        assert_eq!(kh.key_types_for("h"), vec!["ssh-ed25519".to_string()]);
    }

    #[test]
    fn revoked_keys_are_refused_even_if_also_listed() {
        let k = blob("ssh-ed25519", b"k");
        let text = format!("{}\n@revoked {}\n", line("h", &k), line("*", &k));
        let kh = KnownHosts::parse(Path::new("kh"), &text);
        assert_eq!(kh.check("h", &k), HostKeyStatus::Revoked { line: 2 });
    }

    #[test]
    fn hashed_names_match_like_openssh() {
        // Produced by `ssh-keygen -H` for host "10.77.0.11": salt and
        // HMAC-SHA1(salt, name), checked here against our own HMAC.
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(b"10.77.0.11");
        let hash = mac.finalize().into_bytes();
        let k = blob("ssh-ed25519", b"k");
        let text = format!(
            "|1|{}|{} ssh-ed25519 {}\n",
            B64.encode(salt),
            B64.encode(hash),
            B64.encode(&k)
        );
        let kh = KnownHosts::parse(Path::new("kh"), &text);
        assert_eq!(kh.check("10.77.0.11", &k), HostKeyStatus::Match { line: 1 });
        assert_eq!(kh.check("10.77.0.12", &k), HostKeyStatus::Unknown);
    }

    #[test]
    fn hashed_line_from_real_ssh_keygen_matches() {
        let dir = tempfile::tempdir().unwrap();
        let kh_path = dir.path().join("known_hosts");
        let k = blob("ssh-ed25519", &[7u8; 32]);
        std::fs::write(&kh_path, format!("{}\n", line("10.77.0.13", &k))).unwrap();
        let status = std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(&kh_path)
            .output();
        let Ok(out) = status else {
            crate::errln!("ssh-keygen not installed; hashed-file check skipped");
            return;
        };
        assert!(
            out.status.success(),
            "ssh-keygen -H: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kh = KnownHosts::load(&kh_path).unwrap();
        assert!(
            matches!(kh.entries[0].patterns, Patterns::Hashed { .. }),
            "ssh-keygen -H hashed the name"
        );
        assert_eq!(kh.check("10.77.0.13", &k), HostKeyStatus::Match { line: 1 });
    }

    #[test]
    fn malformed_lines_are_skipped_not_fatal() {
        let k = blob("ssh-ed25519", b"k");
        let text = format!(
            "garbage\nh ssh-ed25519 !!notbase64\n@bogus {}\nh ssh-rsa {}\n@cert-authority *.example ssh-ed25519 {}\n{}\n",
            line("h", &k),
            B64.encode(&k), // type field disagrees with the blob
            B64.encode(&k),
            line("h", &k)
        );
        let kh = KnownHosts::parse(Path::new("kh"), &text);
        assert_eq!(kh.skipped_lines, vec![1, 2, 3, 4]);
        assert_eq!(kh.check("h", &k), HostKeyStatus::Match { line: 6 });
    }

    #[test]
    fn append_records_and_is_found_again_after_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let k = blob("ssh-ed25519", b"fresh");
        let mut kh = KnownHosts::load(&path).unwrap();
        assert_eq!(kh.check("10.77.0.11", &k), HostKeyStatus::Unknown);
        kh.append("10.77.0.11", &k).unwrap();
        assert_eq!(kh.check("10.77.0.11", &k), HostKeyStatus::Match { line: 1 });
        // A file without a trailing newline still gets a clean new line.
        std::fs::write(&path, line("other", &k)).unwrap();
        let mut kh = KnownHosts::load(&path).unwrap();
        kh.append("[10.77.0.11]:2222", &k).unwrap();
        let kh = KnownHosts::load(&path).unwrap();
        assert_eq!(kh.entries.len(), 2);
        assert_eq!(
            kh.check("[10.77.0.11]:2222", &k),
            HostKeyStatus::Match { line: 2 }
        );
    }

    #[test]
    fn fingerprint_matches_ssh_keygen_format() {
        let fp = fingerprint(b"abc");
        assert!(fp.starts_with("SHA256:"));
        assert!(!fp.ends_with('='), "no base64 padding, like ssh-keygen");
        assert_eq!(fp, "SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
    }
}
