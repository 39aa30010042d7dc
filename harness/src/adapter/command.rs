//! Running one of the adapter's short commands (`ready`, `healthy`,
//! `primary`, `version`, `stop`, `install`) on this machine: `sh -c` in a
//! process group of its own, output captured (the last
//! [`OUTPUT_LIMIT_BYTES`]), a deadline after which the whole group is
//! killed. Nothing it starts outlives the call.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// How much of a command's output is kept (its end).
pub const OUTPUT_LIMIT_BYTES: usize = 64 * 1024;

/// How one run of a command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandOutput {
    /// The exit code; None when killed by a signal or at the deadline.
    pub code: Option<i32>,
    pub timed_out: bool,
    /// stdout, then stderr (each cut to its last bytes), lossy UTF-8.
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// How it ended, in words: `exit status 3`, `timed out after 5 s`.
    pub fn status(&self, timeout: Duration) -> String {
        match (self.timed_out, self.code) {
            (true, _) => format!("timed out after {timeout:?}"),
            (false, Some(c)) => format!("exit status {c}"),
            (false, None) => "killed by a signal".to_string(),
        }
    }

    /// The last `lines` lines of its output (stdout and stderr).
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self
            .stdout
            .lines()
            .chain(self.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

async fn read_capped(mut from: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_LIMIT_BYTES {
                    kept.drain(..kept.len() - OUTPUT_LIMIT_BYTES);
                }
            }
        }
    }
    if kept.len() > OUTPUT_LIMIT_BYTES {
        kept.drain(..kept.len() - OUTPUT_LIMIT_BYTES);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Runs `command` under `sh -c` in `cwd` with `env` added, killing its
/// process group at `timeout`. Err only when `sh` cannot be started.
pub async fn run(
    command: &str,
    cwd: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> std::io::Result<CommandOutput> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let stdout = tokio::spawn(read_capped(child.stdout.take().expect("piped")));
    let stderr = tokio::spawn(read_capped(child.stderr.take().expect("piped")));
    let (code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(e)) => return Err(e),
        Err(_) => (None, true),
    };
    // Whatever the command left behind in its group goes with it (a
    // background child would otherwise hold the pipes open).
    if let Some(pgid) = pgid {
        // SAFETY: kill(2) on the process group this call created.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.wait().await;
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    Ok(CommandOutput {
        code,
        timed_out,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn output_status_and_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(async {
            let env = vec![("GREETING".to_string(), "hi".to_string())];
            let o = run(
                "echo $GREETING; pwd; echo oops >&2; exit 3",
                dir.path(),
                &env,
                Duration::from_secs(5),
            )
            .await
            .expect("runs");
            assert_eq!(o.code, Some(3));
            assert!(!o.success());
            assert_eq!(o.stdout.lines().next(), Some("hi"));
            assert_eq!(o.tail(1), "oops");
            assert_eq!(o.status(Duration::from_secs(5)), "exit status 3");
            let started = std::time::Instant::now();
            // A background child holding stdout must not keep it waiting.
            let o = run(
                "sleep 30 & sleep 30",
                dir.path(),
                &[],
                Duration::from_millis(300),
            )
            .await
            .expect("runs");
            assert!(o.timed_out && started.elapsed() < Duration::from_secs(5));
            let o = run(
                "(sleep 30 &); echo done",
                dir.path(),
                &[],
                Duration::from_secs(5),
            )
            .await
            .expect("runs");
            assert!(o.success() && o.stdout == "done\n", "{o:?}");
        });
    }

    #[test]
    fn huge_output_keeps_its_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let o = rt()
            .block_on(run(
                "seq 1 200000",
                dir.path(),
                &[],
                Duration::from_secs(10),
            ))
            .expect("runs");
        assert!(o.stdout.len() <= OUTPUT_LIMIT_BYTES);
        assert_eq!(o.stdout.lines().last(), Some("200000"));
    }
}
