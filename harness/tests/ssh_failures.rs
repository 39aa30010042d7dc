//! The failure paths of SSH, against real sshd in a lab: an unreachable
//! address, a wrong key, a changed host key, an unknown host key. Each must
//! end with exit 255 and a message naming the host and the cause, within
//! the connect timeout (the elapsed time is printed, not asserted).
//!
//! Needs root: `FAULTLINE_LAB_TESTS=1 cargo test -p faultline --test ssh_failures -- --ignored`.

mod lab_support;

use lab_support::{enabled, run, text, TestLab};
use std::time::Instant;

fn ping(args: &[&str]) -> (i32, String, u128) {
    let start = Instant::now();
    let mut all = vec!["lab", "ping"];
    all.extend_from_slice(args);
    let out = run(&all);
    let ms = start.elapsed().as_millis();
    (out.status.code().unwrap_or(-1), text(&out), ms)
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn unreachable_address_fails_naming_the_host_within_the_connect_timeout() {
    if !enabled("unreachable_address") {
        return;
    }
    let lab = TestLab::up(1);
    let key = format!("{}/id_ed25519", lab.dir_str());
    let kh = format!("{}/known_hosts", lab.dir_str());
    // Inside the lab's subnet, with no host behind it.
    let (code, out, ms) = ping(&[
        "--nodes",
        "10.77.0.99",
        "--ssh-key",
        &key,
        "--known-hosts",
        &kh,
        "--ssh-connect-timeout",
        "3s",
    ]);
    eprintln!("unreachable: exit {code} after {ms} ms");
    assert_eq!(code, 255, "{out}");
    assert!(
        out.contains("error: 10.77.0.99: unreachable after"),
        "{out}"
    );
    // `faultline test` in remote mode fails the same way, before any node starts.
    let store = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = run(&[
        "test",
        "--nodes",
        "10.77.0.99",
        "--ssh-key",
        &key,
        "--known-hosts",
        &kh,
        "--ssh-connect-timeout",
        "3s",
        "--store",
        store.path().to_str().unwrap(),
        "--time-limit",
        "1s",
    ]);
    eprintln!(
        "faultline test, unreachable: exit {:?} after {} ms",
        out.status.code(),
        start.elapsed().as_millis()
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        text(&out).contains("10.77.0.99: unreachable after"),
        "{}",
        text(&out)
    );
    // A port nobody listens on: refused, retried with back-off, then the same error.
    let (code, out, ms) = ping(&[
        "--nodes",
        &format!("{}:2222", lab.addr(1)),
        "--ssh-key",
        &key,
        "--known-hosts",
        &kh,
        "--ssh-connect-timeout",
        "2s",
    ]);
    eprintln!("refused: exit {code} after {ms} ms");
    assert_eq!(code, 255, "{out}");
    assert!(out.contains("10.77.0.11:2222: unreachable after"), "{out}");
    assert!(out.contains("Connection refused"), "{out}");
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn wrong_key_fails_as_authentication_naming_the_host() {
    if !enabled("wrong_key") {
        return;
    }
    let lab = TestLab::up(1);
    let wrong = lab.path().join("wrong_key");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&wrong)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok);
    let kh = format!("{}/known_hosts", lab.dir_str());
    let (code, out, ms) = ping(&[
        "--nodes",
        &lab.addr(1),
        "--ssh-key",
        wrong.to_str().unwrap(),
        "--known-hosts",
        &kh,
    ]);
    eprintln!("wrong key: exit {code} after {ms} ms");
    assert_eq!(code, 255, "{out}");
    assert!(
        out.contains("error: 10.77.0.11: authentication as root failed"),
        "{out}"
    );
    assert!(out.contains("wrong_key"), "names the key it tried: {out}");
    // The right key works, so the failure above was the key's.
    let key = format!("{}/id_ed25519", lab.dir_str());
    let (code, out, _) = ping(&[
        "--nodes",
        &lab.addr(1),
        "--ssh-key",
        &key,
        "--known-hosts",
        &kh,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hostname=fl-lab-1"), "{out}");
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn changed_host_key_is_refused_even_with_accept_new() {
    if !enabled("changed_host_key") {
        return;
    }
    let lab = TestLab::up(2);
    // known_hosts where host 1 has some other key: as if the host changed.
    let other = lab.path().join("other_key");
    assert!(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap()
        .success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let fields: Vec<&str> = pubkey.split_whitespace().collect();
    let real = std::fs::read_to_string(lab.path().join("known_hosts")).unwrap();
    let changed: String = real
        .lines()
        .map(|l| {
            if l.starts_with("10.77.0.11 ") {
                format!("10.77.0.11 {} {}\n", fields[0], fields[1])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let kh = lab.path().join("known_hosts.changed");
    std::fs::write(&kh, changed).unwrap();
    let key = format!("{}/id_ed25519", lab.dir_str());
    for extra in [None, Some("--ssh-accept-new")] {
        let mut args = vec![
            "--nodes",
            "10.77.0.11,10.77.0.12",
            "--ssh-key",
            &key,
            "--known-hosts",
            kh.to_str().unwrap(),
        ];
        args.extend(extra);
        let (code, out, ms) = ping(&args);
        eprintln!("changed host key {extra:?}: exit {code} after {ms} ms");
        assert_eq!(code, 255, "{out}");
        assert!(out.contains("10.77.0.11: HOST KEY HAS CHANGED"), "{out}");
        assert!(out.contains("line 1"), "names the known_hosts line: {out}");
        assert!(
            out.contains("10.77.0.12\tok"),
            "the other host is unaffected: {out}"
        );
    }
    // The file was not touched by --ssh-accept-new.
    assert!(std::fs::read_to_string(&kh).unwrap().contains(fields[1]));
}

#[test]
#[ignore = "needs root and creates network namespaces; run by .ci/lab.sh with FAULTLINE_LAB_TESTS=1"]
fn unknown_host_key_is_refused_unless_accept_new_which_records_it() {
    if !enabled("unknown_host_key") {
        return;
    }
    let lab = TestLab::up(2);
    let key = format!("{}/id_ed25519", lab.dir_str());
    let kh = lab.path().join("fresh_known_hosts");
    let khs = kh.to_str().unwrap();
    let (code, out, _) = ping(&[
        "--nodes",
        "10.77.0.11",
        "--ssh-key",
        &key,
        "--known-hosts",
        khs,
    ]);
    assert_eq!(code, 255, "{out}");
    assert!(out.contains("10.77.0.11: host key is not in"), "{out}");
    assert!(
        out.contains("--ssh-accept-new"),
        "says how to proceed: {out}"
    );
    let (code, out, _) = ping(&[
        "--nodes",
        "10.77.0.11,10.77.0.12",
        "--ssh-key",
        &key,
        "--known-hosts",
        khs,
        "--ssh-accept-new",
    ]);
    assert_eq!(code, 0, "{out}");
    let recorded = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(recorded.lines().count(), 2, "{recorded}");
    // The recorded keys are the lab's real ones.
    let real = std::fs::read_to_string(lab.path().join("known_hosts")).unwrap();
    for line in recorded.lines() {
        assert!(
            real.lines().any(|r| r == line),
            "{line} not in the lab's known_hosts:\n{real}"
        );
    }
    // And now they verify without the flag.
    let (code, out, _) = ping(&[
        "--nodes",
        "10.77.0.11,10.77.0.12",
        "--ssh-key",
        &key,
        "--known-hosts",
        khs,
    ]);
    assert_eq!(code, 0, "{out}");
}
