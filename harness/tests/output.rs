//! A closed stdout never makes the binary panic or fail (`faultline ls |
//! head`): every print path goes through harness/src/output.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

/// Runs `faultline ARGS` with stdout a pipe whose reader is already gone,
/// so its very first write fails with EPIPE; returns (exit code, stderr).
fn run_with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("faultline runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("temp file");
    p
}

#[test]
fn a_closed_stdout_ends_each_command_quietly_with_its_own_exit_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = write(
        dir.path(),
        "v.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n",
    );
    let invalid = write(
        dir.path(),
        "i.edn",
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n\
         {:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value 2}\n",
    );
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).expect("store");
    let (valid, invalid, store) = (
        valid.to_str().expect("utf-8"),
        invalid.to_str().expect("utf-8"),
        store.to_str().expect("utf-8"),
    );
    let cases: [(&[&str], i32); 11] = [
        (&["check", valid], 0),
        (&["check", invalid], 1),
        (&["check", "--json", valid, invalid], 1),
        (&["check", "--help"], 0),
        (&["--help"], 0),
        (&["--version"], 0),
        (&["node", "--list-bugs"], 0),
        (&["ls", "--store", store], 0),
        (&["completions", "bash"], 0),
        (&["man"], 0),
        (
            &["ring", "--nodes", "3", "--vnodes", "4", "--keys", "1000"],
            0,
        ),
    ];
    for (args, code) in cases {
        let (got, stderr) = run_with_closed_stdout(args);
        assert_eq!(got, Some(code), "faultline {args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.to_lowercase().contains("broken pipe"),
            "faultline {args:?} complained about the closed pipe: {stderr}"
        );
    }
}

/// Every print in the binary's sources goes through harness/src/output.rs:
/// a plain `println!` there would panic on a closed pipe.
#[test]
fn no_source_of_the_binary_prints_with_the_panicking_macros() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("output.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                let prints = ["println!(", "print!(", "eprintln!(", "eprint!("]
                    .iter()
                    .any(|m| code.contains(m));
                if prints {
                    offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "use outln!/out!/errln! (harness/src/output.rs), which never panic on a closed pipe:\n{}",
        offenders.join("\n")
    );
}
