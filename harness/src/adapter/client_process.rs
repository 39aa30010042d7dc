//! One adapter client process: the line protocol of docs/adapters.md
//! ("The client protocol") from faultline's side.
//!
//! [`ClientProcess::start`] runs the client command under `sh -c` in a
//! process group of its own (stdin and stdout piped, stderr appended to the
//! worker's log), sends `init` and waits for `init_ok`;
//! [`ClientProcess::invoke`] writes one `invoke` and reads one answer. Any
//! way the client breaks the protocol (no answer in time, a line that is
//! not JSON or too long, the wrong `id` or `type`, exiting) is a
//! [`ClientFault`], never a panic or an unbounded wait; the caller then
//! drops the process, which kills its whole process group.

use faultline_workloads::Outcome;
use serde_json::{json, Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The longest line a client may write.
pub const MAX_LINE_BYTES: u64 = 1 << 20;
/// How long a client may take to answer `init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long faultline waits past an invoke's `timeout_ms` for the answer.
pub const ANSWER_GRACE: Duration = Duration::from_millis(250);
/// How long a client may take to exit once its stdin is closed.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);

/// How to start one worker's client.
#[derive(Clone, Debug)]
pub struct ClientCommand {
    /// The rendered `client.command`, run under `sh -c`.
    pub command: String,
    /// Its working directory (the run directory).
    pub cwd: PathBuf,
    /// Where its stderr goes (appended, every incarnation).
    pub log: PathBuf,
    /// The `init` message (without `type`).
    pub init: Map<String, Value>,
}

/// What a client answered to one invoke.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientAnswer {
    pub outcome: Outcome,
    pub value: Option<Value>,
    pub token: Option<u64>,
    pub error: Option<String>,
    pub node: Option<String>,
}

/// How a client broke the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFault {
    /// The client command could not be run at all.
    Spawn(String),
    /// No answer within the wait (the invoke's timeout plus the grace).
    NoAnswer { waited_ms: u64 },
    /// It printed a line that is not a JSON object (the line, cut short).
    NotJson { line: String, why: String },
    /// A line longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// An answer to another invoke (or an init answer that is not `init_ok`).
    WrongAnswer { line: String, why: String },
    /// The process closed stdout or exited.
    Exited { status: String },
}

impl ClientFault {
    /// A short name of the kind of fault, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientFault::Spawn(_) => "could not start",
            ClientFault::NoAnswer { .. } => "no answer in time",
            ClientFault::NotJson { .. } => "printed a line that is not JSON",
            ClientFault::TooLong => "printed a line over 1 MiB",
            ClientFault::WrongAnswer { .. } => "answered wrongly",
            ClientFault::Exited { .. } => "exited",
        }
    }
}

impl fmt::Display for ClientFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientFault::Spawn(e) => write!(f, "could not start: {e}"),
            ClientFault::NoAnswer { waited_ms } => write!(f, "no answer within {waited_ms} ms"),
            ClientFault::NotJson { line, why } => {
                write!(
                    f,
                    "printed a line that is not a JSON object ({why}): {line:?}"
                )
            }
            ClientFault::TooLong => write!(f, "printed a line over {MAX_LINE_BYTES} bytes"),
            ClientFault::WrongAnswer { line, why } => write!(f, "{why}: {line:?}"),
            ClientFault::Exited { status } => write!(f, "exited ({status})"),
        }
    }
}

/// A line for messages: at most 200 characters.
fn excerpt(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// A running client. Dropping it kills its process group.
pub struct ClientProcess {
    child: Child,
    pgid: Option<i32>,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl ClientProcess {
    /// Starts `command` and completes the `init` handshake within
    /// [`INIT_TIMEOUT`].
    pub async fn start(command: &ClientCommand) -> Result<ClientProcess, ClientFault> {
        let mut process = Self::spawn(command)?;
        let mut init = command.init.clone();
        init.insert("type".into(), json!("init"));
        process.write(&Value::Object(init)).await?;
        let line = process.read_line(INIT_TIMEOUT).await?;
        let answer = parse_object(&line)?;
        if answer.get("type").and_then(Value::as_str) != Some("init_ok") {
            return Err(ClientFault::WrongAnswer {
                line: excerpt(&line),
                why: "the answer to init is not {\"type\":\"init_ok\"}".into(),
            });
        }
        Ok(process)
    }

    fn spawn(command: &ClientCommand) -> Result<ClientProcess, ClientFault> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&command.log)
            .map_err(|e| ClientFault::Spawn(format!("opening {}: {e}", command.log.display())))?;
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&command.command)
            .current_dir(&command.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ClientFault::Spawn(format!("sh -c {:?}: {e}", command.command)))?;
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout was piped"));
        Ok(ClientProcess {
            child,
            pgid,
            stdin: Some(stdin),
            stdout,
            next_id: 1,
        })
    }

    /// The process group id (the client's pid).
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    async fn write(&mut self, message: &Value) -> Result<(), ClientFault> {
        let mut line = message.to_string();
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("stdin is open until close");
        let written = async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        };
        match tokio::time::timeout(INIT_TIMEOUT, written).await {
            Ok(Ok(())) => Ok(()),
            // A broken pipe: the client is gone.
            Ok(Err(_)) => Err(self.exit_fault().await),
            Err(_) => Err(ClientFault::NoAnswer {
                waited_ms: INIT_TIMEOUT.as_millis() as u64,
            }),
        }
    }

    /// Why the client stopped reading or writing: its exit status when it
    /// exits soon, else that it closed its end.
    async fn exit_fault(&mut self) -> ClientFault {
        let status = match tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await
        {
            Ok(Ok(s)) => s.to_string(),
            Ok(Err(e)) => format!("waiting for it: {e}"),
            Err(_) => "closed its stdin or stdout but is still running".to_string(),
        };
        ClientFault::Exited { status }
    }

    async fn read_line(&mut self, wait: Duration) -> Result<String, ClientFault> {
        let mut bytes = Vec::new();
        let mut limited = (&mut self.stdout).take(MAX_LINE_BYTES + 1);
        let read = limited.read_until(b'\n', &mut bytes);
        let result = tokio::time::timeout(wait, read).await;
        drop(limited);
        match result {
            Err(_) => Err(ClientFault::NoAnswer {
                waited_ms: wait.as_millis() as u64,
            }),
            Ok(Err(e)) => Err(ClientFault::Exited {
                status: format!("reading its stdout: {e}"),
            }),
            Ok(Ok(0)) => Err(self.exit_fault().await),
            Ok(Ok(n)) if n as u64 > MAX_LINE_BYTES => Err(ClientFault::TooLong),
            Ok(Ok(_)) if bytes.last() != Some(&b'\n') => Err(self.exit_fault().await),
            Ok(Ok(_)) => String::from_utf8(bytes).map_err(|e| ClientFault::NotJson {
                line: excerpt(&String::from_utf8_lossy(e.as_bytes())),
                why: "not UTF-8".into(),
            }),
        }
    }

    /// Sends `call` (an object with `f` and its fields) as invoke of
    /// `process`, and reads its answer within `timeout` plus
    /// [`ANSWER_GRACE`].
    pub async fn invoke(
        &mut self,
        call: &Value,
        process: u64,
        timeout: Duration,
    ) -> Result<ClientAnswer, ClientFault> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = Map::new();
        message.insert("type".into(), json!("invoke"));
        message.insert("id".into(), json!(id));
        message.insert("process".into(), json!(process));
        message.insert("timeout_ms".into(), json!(timeout.as_millis() as u64));
        if let Value::Object(fields) = call {
            for (k, v) in fields {
                message.insert(k.clone(), v.clone());
            }
        }
        self.write(&Value::Object(message)).await?;
        let line = self.read_line(timeout + ANSWER_GRACE).await?;
        parse_answer(&line, id)
    }

    /// Closes stdin and waits up to [`EXIT_GRACE`] for the client to exit;
    /// then (and in any case) its process group is killed.
    pub async fn close(mut self) {
        drop(self.stdin.take());
        let _ = tokio::time::timeout(EXIT_GRACE, self.child.wait()).await;
        self.kill();
    }

    /// Kills the client's whole process group now.
    pub fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: kill(2) on a process group this process created; an
            // already empty group gives ESRCH, which is fine.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn parse_object(line: &str) -> Result<Map<String, Value>, ClientFault> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ClientFault::NotJson {
            line: excerpt(line),
            why: "not an object".into(),
        }),
        Err(e) => Err(ClientFault::NotJson {
            line: excerpt(line),
            why: e.to_string(),
        }),
    }
}

/// Reads one answer line to invoke `id`.
pub fn parse_answer(line: &str, id: u64) -> Result<ClientAnswer, ClientFault> {
    let m = parse_object(line)?;
    let wrong = |why: String| ClientFault::WrongAnswer {
        line: excerpt(line),
        why,
    };
    match m.get("id") {
        Some(v) if v.as_u64() == Some(id) => {}
        Some(v) => return Err(wrong(format!("the answer's id is {v}, the invoke's {id}"))),
        None => {
            return Err(wrong(format!(
                "the answer has no id (the invoke's is {id})"
            )))
        }
    }
    let outcome = match m.get("type").and_then(Value::as_str) {
        Some("ok") => Outcome::Ok,
        Some("fail") => Outcome::Fail,
        Some("info") => Outcome::Info,
        _ => return Err(wrong("type must be \"ok\", \"fail\" or \"info\"".into())),
    };
    let token = match m.get("token") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| wrong(format!("token {v} is not a non-negative integer")))?,
        ),
    };
    let text = |field: &str| -> Result<Option<String>, ClientFault> {
        match m.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(wrong(format!("{field} {v} is not a string"))),
        }
    };
    let error = text("error")?;
    let node = text("node")?;
    Ok(ClientAnswer {
        outcome,
        value: m.get("value").cloned(),
        token,
        error,
        node,
    })
}

/// True when `path` names a program that exists: an absolute or relative
/// path to a file, or a name found on PATH.
pub fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client in sh: answers init, then each invoke with `answer` (a
    /// printf format whose %s is the invoke's id).
    fn sh_client(dir: &Path, answer: &str) -> ClientCommand {
        let script = format!(
            "read line; printf '{{\"type\":\"init_ok\"}}\\n'; \
             while read line; do id=$(echo \"$line\" | sed 's/.*\"id\":\\([0-9]*\\).*/\\1/'); printf '{answer}\\n' \"$id\"; done"
        );
        ClientCommand {
            command: script,
            cwd: dir.to_path_buf(),
            log: dir.join("client.log"),
            init: Map::new(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    const T: Duration = Duration::from_millis(500);

    #[test]
    fn a_well_behaved_client_answers_each_invoke() {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(async {
            let c = sh_client(
                dir.path(),
                r#"{"type":"ok","id":%s,"value":[1,2],"token":7,"node":"n2"}"#,
            );
            let mut p = ClientProcess::start(&c).await.expect("starts");
            for _ in 0..3 {
                let a = p
                    .invoke(&json!({"f":"read","key":"set"}), 4, T)
                    .await
                    .expect("answers");
                assert_eq!(a.outcome, Outcome::Ok);
                assert_eq!(a.value, Some(json!([1, 2])));
                assert_eq!((a.token, a.node.as_deref()), (Some(7), Some("n2")));
            }
            p.close().await;
        });
    }

    #[test]
    fn every_way_of_breaking_the_protocol_is_a_fault_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: [(&str, &str); 5] = [
            ("Traceback (most recent call last):", "not a JSON object"),
            (
                r#"{"type":"ok","id":99}"#,
                "the answer's id is 99, the invoke's 1",
            ),
            (r#"{"type":"maybe","id":%s}"#, "type must be"),
            (r#"{"type":"ok","id":%s,"token":-1}"#, "token -1"),
            ("[1,2]", "not an object"),
        ];
        rt().block_on(async {
            for (answer, want) in cases {
                let c = sh_client(dir.path(), answer);
                let mut p = ClientProcess::start(&c).await.expect("starts");
                let e = p
                    .invoke(&json!({"f":"read"}), 0, T)
                    .await
                    .expect_err(answer);
                assert!(e.to_string().contains(want), "{answer}: {e}");
            }
            // Silent: no answer within the timeout plus the grace.
            let silent = ClientCommand {
                command: "read line; echo '{\"type\":\"init_ok\"}'; sleep 30".into(),
                ..sh_client(dir.path(), "")
            };
            let mut p = ClientProcess::start(&silent).await.expect("starts");
            let started = std::time::Instant::now();
            let e = p
                .invoke(&json!({"f":"read"}), 0, T)
                .await
                .expect_err("silent");
            assert_eq!(e, ClientFault::NoAnswer { waited_ms: 750 });
            assert!(started.elapsed() < Duration::from_secs(5));
            // Exits mid-run.
            let quits = ClientCommand {
                command: "read line; echo '{\"type\":\"init_ok\"}'; read line; exit 3".into(),
                ..sh_client(dir.path(), "")
            };
            let mut p = ClientProcess::start(&quits).await.expect("starts");
            let e = p
                .invoke(&json!({"f":"read"}), 0, T)
                .await
                .expect_err("exits");
            assert_eq!(
                e,
                ClientFault::Exited {
                    status: "exit status: 3".into()
                }
            );
        });
    }

    #[test]
    fn a_client_that_cannot_start_says_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        rt().block_on(async {
            let missing = ClientCommand {
                command: "exec /nonexistent/client --flag".into(),
                ..sh_client(dir.path(), "")
            };
            let e = ClientProcess::start(&missing).await.err().expect("fails");
            assert!(
                matches!(e, ClientFault::Exited { ref status } if status.contains("127")),
                "{e}"
            );
            let wrong = ClientCommand {
                command: "read line; echo '{\"type\":\"ready\"}'; sleep 5".into(),
                ..sh_client(dir.path(), "")
            };
            let e = ClientProcess::start(&wrong).await.err().expect("fails");
            assert!(e.to_string().contains("not {\"type\":\"init_ok\"}"), "{e}");
        });
        let log = std::fs::read_to_string(dir.path().join("client.log")).expect("stderr kept");
        assert!(log.contains("/nonexistent/client"), "{log}");
    }

    #[test]
    fn dropping_a_client_kills_its_whole_process_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("grandchild.pid");
        rt().block_on(async {
            // The client leaves a grandchild running in its process group.
            let c = ClientCommand {
                command: format!(
                    "sleep 300 & echo $! > {}; read line; echo '{{\"type\":\"init_ok\"}}'; cat >/dev/null",
                    pidfile.display()
                ),
                ..sh_client(dir.path(), "")
            };
            let p = ClientProcess::start(&c).await.expect("starts");
            drop(p);
        });
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie waiting for init to reap it.
        while std::time::Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the client's grandchild {pid} outlived it");
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        assert!(program_exists("sh"));
        assert!(program_exists("/bin/sh"));
        assert!(!program_exists("no-such-program-faultline"));
        assert!(!program_exists("/no/such/program"));
    }
}
