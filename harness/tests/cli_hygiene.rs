//! The command line as a terminal user meets it: usage and exit 254 with
//! no subcommand, a clear message for negative values, no colour in logs
//! that do not go to a terminal (or with NO_COLOR), no runs rather than an
//! error for a store that does not exist yet, shell completions, the man
//! page and `report --json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("faultline runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn escapes(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == 0x1b).count()
}

#[test]
fn no_subcommand_prints_usage_on_stderr_and_exits_254() {
    let o = faultline(&[]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    assert!(stderr(&o).contains("Usage: faultline"), "{}", stderr(&o));
    assert!(
        stdout(&o).is_empty(),
        "usage is not a result: {}",
        stdout(&o)
    );
    // Asking for help is not an error.
    let o = faultline(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Usage: faultline"));
}

#[test]
fn negative_values_get_a_message_naming_the_flag() {
    for (flag, value) in [
        ("--time-limit", "-5s"),
        ("--node-count", "-3"),
        ("--rate", "-0.5"),
    ] {
        let o = faultline(&["test", flag, value]);
        assert_eq!(o.status.code(), Some(254), "{flag} {value}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&format!("{flag} {value}: negative values are not accepted")),
            "{flag} {value}: {err}"
        );
        assert!(!err.contains("unexpected argument"), "{err}");
    }
}

#[test]
fn ls_on_a_missing_store_says_there_are_no_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let s = store.to_str().expect("utf-8");
    let o = faultline(&["ls", "--store", s]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("no runs"), "{}", stdout(&o));
    let o = faultline(&["ls", "--store", s, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "[]");
    assert!(!store.exists(), "ls does not make the store");
    // A file where the store should be is still bad input.
    std::fs::write(&store, "not a folder").expect("write");
    let o = faultline(&["ls", "--store", s]);
    assert_eq!(o.status.code(), Some(254), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
}

/// `GET path` on `addr`; the whole response.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to serve");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read response");
    out
}

#[test]
fn serve_on_a_missing_store_serves_no_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--store"])
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    let read = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read.expect("read the URL");
        let addr = line
            .trim()
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix('/'))
            .unwrap_or_else(|| panic!("serve printed {line:?}, not its URL"))
            .to_string();
        let page = http_get(&addr, "/");
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("No runs yet"), "{page}");
        let api = http_get(&addr, "/api/runs");
        assert!(api.starts_with("HTTP/1.1 200"), "{api}");
        assert!(api.trim_end().ends_with("[]"), "{api}");
    }));
    let _ = child.kill();
    let _ = child.wait();
    let mut err = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    if let Err(panic) = result {
        eprintln!("serve's stderr:\n{err}");
        std::panic::resume_unwind(panic);
    }
    assert!(
        err.contains("no runs"),
        "serve says there are no runs: {err}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let o = faultline(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", stderr(&o));
        let script = stdout(&o);
        assert!(script.contains("faultline"), "{shell}");
        for flag in ["time-limit", "nemesis", "workload"] {
            assert!(script.contains(flag), "{shell} completes --{flag}");
        }
        // --system offers the built-in systems and an adapter file's shape
        // (it also takes any path; the parser does not refuse one). Each
        // shell names the flag, then its values on the next lines.
        let marker = match shell {
            "bash" => "--system)",
            "zsh" => "'--system=",
            _ => "-l system ",
        };
        let at = script
            .find(marker)
            .unwrap_or_else(|| panic!("{shell} completes --system:\n{script}"));
        let values: String = script[at..].lines().take(4).collect::<Vec<_>>().join("\n");
        for value in ["faultline", "etcd", "PATH.toml"] {
            assert!(values.contains(value), "{shell}: {value} in {values}");
        }
    }
    // The bash script is valid bash.
    let o = faultline(&["completions", "bash"]);
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .expect("bash");
    bash.stdin
        .take()
        .expect("stdin")
        .write_all(&o.stdout)
        .expect("pipe");
    assert!(bash.wait().expect("bash -n").success());
    let o = faultline(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(254), "an unknown shell is bad input");
}

#[test]
fn man_page_and_one_page_per_subcommand() {
    let o = faultline(&["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(
        page.starts_with(".ie") || page.contains(".TH faultline 1"),
        "{page}"
    );
    assert!(page.contains(".TH faultline 1"), "{page}");
    assert!(page.contains("test"), "lists the subcommands");
    let dir = tempfile::tempdir().expect("tempdir");
    let o = faultline(&["man", "--dir", dir.path().to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in [
        "faultline.1",
        "faultline-test.1",
        "faultline-lab-up.1",
        "faultline-check.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name} is a man page");
    }
    let test_page = std::fs::read_to_string(dir.path().join("faultline-test.1")).expect("read");
    assert!(
        test_page.contains("time\\-limit"),
        "faultline-test.1 documents --time-limit"
    );
}

#[test]
fn report_json_describes_each_report_built() {
    use faultline_results::synthetic_run::{write_run, RunSpec};
    let store = tempfile::tempdir().expect("tempdir");
    let run = write_run(store.path(), &RunSpec::default());
    let o = faultline(&["report", "--json", run.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let reports = v.as_array().expect("an array, one per run");
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert!(r["operations"].as_u64().expect("operations") > 0, "{r}");
    let path = r["report"].as_str().expect("report path");
    assert!(Path::new(path).is_file(), "{path}");
    assert!(r["bytes"].as_u64().expect("bytes") > 0);
    assert!(r["warnings"].is_array());
}

/// A short real run with logging at info, stderr to a pipe: not a single
/// escape byte in it, while `--color always` (the control) has some; and
/// the run's own log, faultline.log, in the store.
#[test]
fn logs_to_a_file_have_no_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |store: &Path, colour: &str| {
        Command::new(BIN)
            .args([
                "test",
                "--time-limit",
                "2s",
                "--node-count",
                "3",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "1s",
                "--color",
                colour,
                "--store",
            ])
            .arg(store)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .output()
            .expect("faultline test runs")
    };
    let plain = run(&dir.path().join("plain"), "auto");
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(
        stderr(&plain).contains("INFO"),
        "RUST_LOG=info logs: {}",
        stderr(&plain)
    );
    assert_eq!(escapes(&plain.stderr), 0, "{}", stderr(&plain));
    assert_eq!(escapes(&plain.stdout), 0, "{}", stdout(&plain));
    let forced = run(&dir.path().join("forced"), "always");
    assert!(escapes(&forced.stderr) > 0, "the control run is coloured");
    // Each run keeps its own log, never coloured (even with --color
    // always), saying what the harness did, linked from report.html.
    for store in ["plain", "forced"] {
        let run = dir.path().join(store).join("latest");
        let log = std::fs::read_to_string(run.join("faultline.log"))
            .unwrap_or_else(|e| panic!("{store}: faultline.log: {e}"));
        assert_eq!(escapes(log.as_bytes()), 0, "{store}: {log}");
        for said in [
            "test register-partition: register on faultline (3 nodes)",
            "node started",
            "nemesis start-partition",
            "\"mechanism\"",
            "nemesis stop-partition",
            "verdict: ",
        ] {
            assert!(
                log.contains(said),
                "{store}: faultline.log lacks {said:?}:\n{log}"
            );
        }
        let report = std::fs::read_to_string(run.join("report.html")).expect("report.html");
        assert!(
            report.contains(r#"<a href="faultline.log">"#),
            "{store}: report.html links faultline.log"
        );
    }
}

/// On a terminal (a pty from `script`), logs are coloured unless NO_COLOR.
#[test]
fn a_terminal_gets_colour_unless_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no `script` (util-linux) to make a terminal");
        return;
    }
    let on_tty = |no_color: bool| {
        let started = Instant::now();
        let mut c = Command::new("script");
        c.args(["-q", "-e", "-c"])
            .arg(format!(
                "{BIN} lab ping --nodes 127.0.0.1:1 --ssh-connect-timeout 300ms"
            ))
            .arg("/dev/null")
            .env("RUST_LOG", "debug")
            .env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let o = c.output().expect("script runs");
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("connect failed"),
            "debug logs were written: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        escapes(&o.stdout)
    };
    assert!(on_tty(false) > 0, "a terminal gets colour");
    assert_eq!(on_tty(true), 0, "NO_COLOR turns it off");
}

/// The executable faultline deploys to hosts carries its own OpenSSL and
/// zlib: hosts without OpenSSL 3 (Debian 11, Ubuntu 20.04) can run it.
#[test]
fn the_executable_needs_no_system_openssl() {
    let Ok(o) = Command::new("ldd").arg(BIN).output() else {
        eprintln!("SKIPPED: no ldd");
        return;
    };
    let libs = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(libs.contains("libc.so"), "ldd worked: {libs}");
    for lib in ["libssl", "libcrypto", "libz.so"] {
        assert!(!libs.contains(lib), "links the system's {lib}:\n{libs}");
    }
    let o = faultline(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("faultline "), "{}", stdout(&o));
}
