//! The run store: `store/<test-name>/<YYYYMMDDTHHMMSS>/`.
//!
//! Each run gets its own directory (a second run in the same second gets a
//! `-2`, `-3`, … suffix, never someone else's directory) and `store/latest`
//! is a relative symlink to the newest run, replaced atomically. The layout
//! of a run directory is documented in docs/store.md; the file names live
//! here only.

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

pub const HISTORY_FILE: &str = "history.jsonl";
pub const TEST_FILE: &str = "test.json";
pub const RESULTS_FILE: &str = "results.json";
pub const NODES_DIR: &str = "nodes";
/// The harness's own log of the run (what it did, every fault, every error).
pub const HARNESS_LOG_FILE: &str = "faultline.log";
pub const LATEST_LINK: &str = "latest";
/// The run's auth token (`faultline test --auth`), mode 0600: a dot file,
/// so `faultline serve` neither lists nor serves it.
pub const AUTH_TOKEN_FILE: &str = ".auth-token";
/// The run's TLS certificates and keys (`faultline test --tls`; keys mode
/// 0600, the folder 0700): a dot folder, so `faultline serve` neither
/// lists nor serves it.
pub const TLS_DIR: &str = ".tls";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{path} is not a run directory: it has no {HISTORY_FILE}")]
    NotARun { path: PathBuf },
    #[error(
        "bad test name {name:?}: use letters, digits, '-', '_', ',', '.' (no '/', not '.' or '..')"
    )]
    BadTestName { name: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One run's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `root/<test_name>/<time>/` (with a suffix if taken) and points
    /// `root/latest` at it.
    pub fn create(
        root: &Path,
        test_name: &str,
        started: DateTime<Utc>,
    ) -> Result<RunDir, StoreError> {
        if test_name.is_empty()
            || test_name == "."
            || test_name == ".."
            || test_name == LATEST_LINK
            || !test_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ',' | '.'))
        {
            return Err(StoreError::BadTestName {
                name: test_name.to_string(),
            });
        }
        let test_dir = root.join(test_name);
        std::fs::create_dir_all(&test_dir).map_err(io(&test_dir))?;
        let stamp = started.format("%Y%m%dT%H%M%S").to_string();
        let mut n = 1;
        let path = loop {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}-{n}")
            };
            let candidate = test_dir.join(&name);
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io(&candidate)(e)),
            }
        };
        let nodes = path.join(NODES_DIR);
        std::fs::create_dir(&nodes).map_err(io(&nodes))?;
        let run = RunDir { path };
        run.point_latest(root)?;
        Ok(run)
    }

    /// Opens an existing run directory (it must hold a history). `store/latest`
    /// and other symlinks are followed.
    pub fn open(path: &Path) -> Result<RunDir, StoreError> {
        let meta = std::fs::metadata(path).map_err(io(path))?;
        if !meta.is_dir() || !path.join(HISTORY_FILE).is_file() {
            return Err(StoreError::NotARun {
                path: path.to_path_buf(),
            });
        }
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    fn point_latest(&self, root: &Path) -> Result<(), StoreError> {
        let target = self
            .path
            .strip_prefix(root)
            .expect("run dirs are created under the root");
        let link = root.join(LATEST_LINK);
        let tmp = root.join(format!(".latest.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &link).map_err(io(&link))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn history(&self) -> PathBuf {
        self.path.join(HISTORY_FILE)
    }
    pub fn test_json(&self) -> PathBuf {
        self.path.join(TEST_FILE)
    }
    pub fn results_json(&self) -> PathBuf {
        self.path.join(RESULTS_FILE)
    }
    /// `faultline.log`: the harness's own log of the run.
    pub fn harness_log(&self) -> PathBuf {
        self.path.join(HARNESS_LOG_FILE)
    }
    /// `.auth-token`: the run's auth token, when it has one.
    pub fn auth_token_file(&self) -> PathBuf {
        self.path.join(AUTH_TOKEN_FILE)
    }
    /// `.tls/`: the run's certificates and keys, when it has TLS.
    pub fn tls_dir(&self) -> PathBuf {
        self.path.join(TLS_DIR)
    }
    /// `nodes/<name>/`: the node's data directory.
    pub fn node_data_dir(&self, node: &str) -> PathBuf {
        self.path.join(NODES_DIR).join(node)
    }
    /// `nodes/<name>.log`: the node's stdout and stderr, across restarts.
    /// Where node `node`'s audit log is kept: `nodes/<node>/audit.jsonl`
    /// (local runs: the node's own, in its data folder; remote runs: the
    /// copy fetched from its host).
    pub fn node_audit_log(&self, node: &str) -> PathBuf {
        self.node_data_dir(node).join(crate::audit::AUDIT_FILE)
    }

    pub fn node_log(&self, node: &str) -> PathBuf {
        self.path.join(NODES_DIR).join(format!("{node}.log"))
    }

    /// Writes `test.json` (pretty JSON), atomically.
    pub fn write_test_json(&self, value: &serde_json::Value) -> Result<(), StoreError> {
        let path = self.test_json();
        let mut text = serde_json::to_string_pretty(value).expect("a JSON value serializes");
        text.push('\n');
        write_atomically(&path, text.as_bytes()).map_err(io(&path))
    }

    /// Reads `test.json`.
    pub fn read_test_json(&self) -> Result<serde_json::Value, StoreError> {
        let path = self.test_json();
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        serde_json::from_str(&text).map_err(|e| StoreError::BadFile {
            path,
            message: e.to_string(),
        })
    }
}

/// Writes a file by writing a temporary sibling and renaming it over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("path has no file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn creates_the_layout_and_points_latest_at_the_newest_run() {
        let root = tempfile::tempdir().expect("tempdir");
        let t = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid time");
        let a = RunDir::create(root.path(), "register", t).expect("first");
        assert_eq!(a.path(), root.path().join("register/20260102T030405"));
        assert!(a.path().join(NODES_DIR).is_dir());
        let b = RunDir::create(root.path(), "register", t).expect("second, same second");
        assert_eq!(b.path(), root.path().join("register/20260102T030405-2"));
        let latest = std::fs::read_link(root.path().join(LATEST_LINK)).expect("latest link");
        assert_eq!(latest, Path::new("register/20260102T030405-2"));
        assert_eq!(b.node_log("n3"), b.path().join("nodes/n3.log"));
    }

    #[test]
    fn open_needs_a_history_and_follows_latest() {
        let root = tempfile::tempdir().expect("tempdir");
        let run = RunDir::create(root.path(), "kv", Utc::now()).expect("create");
        assert!(matches!(
            RunDir::open(run.path()),
            Err(StoreError::NotARun { .. })
        ));
        std::fs::write(run.history(), "").expect("write history");
        RunDir::open(&root.path().join(LATEST_LINK)).expect("open through latest");
        assert!(matches!(
            RunDir::open(&root.path().join("nope")),
            Err(StoreError::Io { .. })
        ));
    }

    #[test]
    fn refuses_test_names_that_escape_the_store() {
        let root = tempfile::tempdir().expect("tempdir");
        for bad in ["", "..", "a/b", "latest", "x y"] {
            assert!(
                matches!(
                    RunDir::create(root.path(), bad, Utc::now()),
                    Err(StoreError::BadTestName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
