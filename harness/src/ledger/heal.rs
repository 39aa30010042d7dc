//! Healing: undo what runs that did not end cleanly left behind.
//!
//! [`heal_store`] looks at every ledger in `STORE/.ledger`. One a live run
//! holds (its `flock`) is left alone. For any other it undoes every held
//! resource ([`super::Resource`] says what undoing means for each kind),
//! then kills any process still marked with the run's id (children the
//! ledger never saw), and reports one [`Action`] per thing it actually
//! undid: a resource already gone is checked and not reported. A remote
//! run's hosts are reached over SSH again ([`super::remote_host`]); one
//! that cannot be reached is an error, and its entry stays. A ledger
//! healed completely gets a `healed` line and moves into its run
//! directory; one with a failure stays for the next heal (as root, say).

use super::file::{Line, Recorded};
use super::process::{self, ProcessIdentity};
use super::resource::Resource;
use super::{ledger_dir, retire, try_lock};
use anyhow::{bail, Context};
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One thing heal undid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Action {
    pub run_id: String,
    /// What was done: `removed iptables chain FAULTLINE-1a2b3c4d …`.
    pub action: String,
}

/// What heal did in one store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HealReport {
    pub actions: Vec<Action>,
    /// Ledgers of runs in progress, left alone: `run id (pid P)`.
    pub live: Vec<String>,
    /// What could not be undone (the ledger stays for a later heal).
    pub errors: Vec<String>,
    /// Lines of a ledger that did not parse (a write cut short by a kill,
    /// a file damaged by hand), named by file and line: skipped, and the
    /// ledger healed from the rest.
    pub warnings: Vec<String>,
    /// Ledgers healed (or found clean) and retired.
    pub retired: usize,
}

impl HealReport {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.errors.is_empty()
    }
}

/// The largest ledger heal reads. A run writes a few lines per fault and
/// process; a file past this is not a ledger faultline wrote, and reading
/// it whole could exhaust memory.
pub const MAX_LEDGER_BYTES: u64 = 16 << 20;

/// Heals every ledger of `store` nobody holds. Never fails as a whole: a
/// ledger it cannot read or heal is named in [`HealReport::errors`].
pub fn heal_store(store: &Path) -> HealReport {
    let mut report = HealReport::default();
    let dir = ledger_dir(store);
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return report,
        Err(e) => {
            report.errors.push(format!("{}: {e}", dir.display()));
            return report;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    for path in paths {
        if let Err(e) = heal_ledger(&path, &mut report) {
            report.errors.push(format!("{}: {e:#}", path.display()));
        }
    }
    report
}

/// Heals one ledger file, unless a live run holds it.
fn heal_ledger(path: &Path, report: &mut HealReport) -> anyhow::Result<()> {
    let mut file = match OpenOptions::new().read(true).append(true).open(path) {
        Ok(f) => f,
        // Retired by its run (or another heal) since the listing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context("opening"),
    };
    let recorded = read_ledger(path)?;
    if !try_lock(&file).context("locking")? {
        let run = recorded.run_id.as_deref().unwrap_or("?");
        let pid = recorded.pid.map_or("?".to_string(), |p| p.to_string());
        report.live.push(format!("{run} (pid {pid})"));
        return Ok(());
    }
    // Locked by us now. The run may have closed and moved its ledger while
    // we waited: then the path no longer names the file we locked.
    if !still_at(&file, path)? {
        return Ok(());
    }
    // Read again, the run may have written more before it died.
    let recorded = read_ledger(path)?;
    let run_id = recorded
        .run_id
        .clone()
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .expect("a .jsonl path has a stem");
    for (line, why) in &recorded.bad_lines {
        report.warnings.push(format!(
            "{} line {line}: not a ledger line ({why}); skipped, the rest healed",
            path.display()
        ));
    }
    let mut actions = Vec::new();
    let mut errors = Vec::new();
    if !recorded.is_clean() {
        let mut held: Vec<&Resource> = recorded.held.values().collect();
        held.sort_by_key(|r| r.heal_rank());
        for resource in held {
            match undo(&run_id, resource) {
                Ok(done) => actions.extend(done),
                Err(e) => errors.push(format!("run {run_id}: {}: {e:#}", resource.describe())),
            }
        }
        for (identity, cmdline) in process::marked(&run_id) {
            if process::kill_identified(identity) {
                actions.push(format!(
                    "killed pid {} (`{cmdline}`), started by the run",
                    identity.pid
                ));
            }
        }
    }
    report.actions.extend(actions.iter().map(|a| Action {
        run_id: run_id.clone(),
        action: a.clone(),
    }));
    if !errors.is_empty() {
        report.errors.extend(errors);
        return Ok(());
    }
    let healed = Line::Healed {
        by_pid: std::process::id(),
        at: chrono::Utc::now().to_rfc3339(),
        actions,
    };
    file.write_all(&healed.encode())
        .and_then(|()| file.sync_data())
        .context("writing the healed line")?;
    retire(path, recorded.run_dir.as_deref())?;
    report.retired += 1;
    Ok(())
}

/// Whether `path` still names the open `file` (not retired or replaced).
fn still_at(file: &std::fs::File, path: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata().context("reading")?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).context("reading"),
    }
}

/// Reads and parses a ledger file, refusing one too large to be a ledger.
fn read_ledger(path: &Path) -> anyhow::Result<Recorded> {
    let bytes = std::fs::metadata(path).context("reading")?.len();
    if bytes > MAX_LEDGER_BYTES {
        bail!(
            "{bytes} bytes, more than a ledger holds ({MAX_LEDGER_BYTES}): not a ledger \
             faultline wrote; look at it and remove it by hand"
        );
    }
    Ok(Recorded::parse(&std::fs::read(path).context("reading")?))
}

/// Undoes one resource of run `run_id`: what was done, one line per thing
/// (none if it was gone).
fn undo(run_id: &str, resource: &Resource) -> anyhow::Result<Vec<String>> {
    let done = match resource {
        Resource::Paused { name, identity } => kill(*identity).then(|| {
            format!(
                "killed {name} (pid {}), paused by the run; not resumed",
                identity.pid
            )
        }),
        Resource::Process { name, identity } => {
            kill(*identity).then(|| format!("killed {name} (pid {}), still running", identity.pid))
        }
        Resource::IptablesChain { chain } => undo_chain(chain)?,
        Resource::File { path, what } => undo_file(path, what)?,
        Resource::Lab { dir } => undo_lab(dir)?,
        Resource::RemoteHost {
            login,
            remote_dir,
            nodes,
        } => return super::remote_host::undo(run_id, login, remote_dir, nodes),
    };
    Ok(done.into_iter().collect())
}

/// Deletes a file, or a folder faultline made (named `faultline-…`).
fn undo_file(path: &Path, what: &str) -> anyhow::Result<Option<String>> {
    let removed = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        Ok(m) if m.is_dir() => {
            let ours = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("faultline-"));
            if !ours {
                bail!(
                    "refusing to remove folder {}: not one faultline makes",
                    path.display()
                );
            }
            std::fs::remove_dir_all(path)
        }
        Ok(_) => std::fs::remove_file(path),
    };
    match removed {
        Ok(()) => Ok(Some(format!("removed {what} {}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// SIGKILL to a recorded process (and its group) if it is still that
/// process; waits until it is gone. Whether it was alive.
fn kill(identity: ProcessIdentity) -> bool {
    if !process::kill_identified(identity) {
        return false;
    }
    // Not our child: it cannot be reaped here; wait until it is no longer
    // running (gone, or a zombie of its own parent).
    let deadline = Instant::now() + Duration::from_secs(5);
    while identity.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn undo_chain(chain: &str) -> anyhow::Result<Option<String>> {
    use crate::cluster::iptables;
    if !chain.starts_with(iptables::CHAIN_PREFIX) {
        bail!("refusing to remove chain {chain:?}: not one faultline makes");
    }
    if !crate::lab::system::is_root() {
        bail!("removing iptables chain {chain} needs root: run `faultline heal` as root");
    }
    if !iptables::chain_exists(chain) {
        return Ok(None);
    }
    iptables::remove_chain(chain)?;
    Ok(Some(format!(
        "removed iptables chain {chain} and the jump to it"
    )))
}

fn undo_lab(dir: &Path) -> anyhow::Result<Option<String>> {
    let recorded = crate::lab::LabState::load(dir).ok().flatten();
    if recorded.is_none() && crate::lab::leftovers().is_empty() {
        return Ok(None);
    }
    let down = crate::lab::down(dir)
        .with_context(|| format!("taking down the half-built lab in {}", dir.display()))?;
    Ok(Some(format!(
        "took down the half-built lab in {}: {} namespaces, {} processes, {} links",
        dir.display(),
        down.namespaces.len(),
        down.processes,
        down.links.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, RUN_LEDGER_FILE};
    use std::process::Command;

    /// A run that dies with its ledger open: the ledger file as it left
    /// it, without the lock (the test drops the Ledger, as death would).
    fn dead_run(store: &Path, run_dir: Option<&Path>) -> (String, PathBuf, Ledger) {
        let ledger = Ledger::open(store, "test", run_dir).expect("open");
        let id = ledger.run_id().to_string();
        let path = ledger.path().expect("recorded").to_path_buf();
        (id, path, ledger)
    }

    /// Heals `store` once no ledger in it is held. A ledger's lock can
    /// outlive its Ledger by a moment: a child that another test thread is
    /// forking shares the descriptor until it execs (close-on-exec).
    fn heal_dead(store: &Path) -> HealReport {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let report = heal_store(store);
            if report.live.is_empty() || Instant::now() > deadline {
                return report;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `run_id` marks a live process whose command line
    /// starts with `cmdline` (a forked child carries the mark only once
    /// it has exec'd).
    fn await_marked(run_id: &str, cmdline: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process::marked(run_id)
            .iter()
            .any(|(_, c)| c.starts_with(cmdline))
        {
            assert!(Instant::now() < deadline, "no `{cmdline}` marked {run_id}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_dead_runs_process_and_file_are_undone_and_reported_once() {
        let store = tempfile::tempdir().expect("tempdir");
        let run_dir = store.path().join("t").join("1");
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        let (run_id, path, ledger) = dead_run(store.path(), Some(&run_dir));
        // A "node" in its own process group, as the clusters start them.
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let (mut child, _held) = ledger.spawn(cmd, "n1").expect("spawn");
        let faketime = run_dir.join("n1.faketime");
        std::fs::write(&faketime, "+1.000\n").expect("write");
        let _f = ledger
            .record(Resource::File {
                path: faketime.clone(),
                what: "libfaketime file".into(),
            })
            .expect("record");
        let identity = ProcessIdentity::of(child.id()).expect("alive");

        // While the run lives, heal leaves it alone.
        let live = heal_store(store.path());
        assert!(live.actions.is_empty(), "{live:?}");
        assert_eq!(live.live.len(), 1, "{live:?}");
        assert!(identity.is_alive());

        drop(_f);
        drop(_held);
        drop(ledger); // the run "dies": its lock goes
        let report = heal_dead(store.path());
        child.wait().expect("reap the killed child");
        let lines: Vec<&str> = report.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(lines.len(), 2, "{report:?}");
        assert!(lines[0].starts_with("killed n1 (pid "), "{lines:?}");
        assert!(
            lines[1].starts_with("removed libfaketime file"),
            "{lines:?}"
        );
        assert!(report.actions.iter().all(|a| a.run_id == run_id));
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(!faketime.exists());
        assert!(!path.exists(), "retired");
        let kept = Recorded::parse(&std::fs::read(run_dir.join(RUN_LEDGER_FILE)).expect("kept"));
        assert!(kept.healed);
        assert!(heal_store(store.path()).is_empty(), "nothing twice");
    }

    #[test]
    fn a_paused_process_is_killed_not_resumed() {
        let store = tempfile::tempdir().expect("tempdir");
        let (_, _, ledger) = dead_run(store.path(), None);
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let (mut child, held) = ledger.spawn(cmd, "n2").expect("spawn");
        let identity = ProcessIdentity::of(child.id()).expect("alive");
        // SAFETY: SIGSTOP to our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGSTOP) };
        let _paused = ledger
            .record(Resource::Paused {
                name: "n2".into(),
                identity,
            })
            .expect("record");
        held.release()
            .expect("the process entry alone would say 'still running'");
        drop(_paused);
        drop(ledger);
        let report = heal_dead(store.path());
        let status = child.wait().expect("reap");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "killed, never continued"
        );
        assert_eq!(report.actions.len(), 1, "{report:?}");
        assert!(
            report.actions[0]
                .action
                .ends_with("paused by the run; not resumed"),
            "{report:?}"
        );
    }

    #[test]
    fn an_unrecorded_child_is_found_by_its_run_id_mark() {
        let store = tempfile::tempdir().expect("tempdir");
        let (_, _, ledger) = dead_run(store.path(), None);
        // A wrapper shell whose own child the ledger never saw.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 61 & wait"]);
        let (mut child, held) = ledger.spawn(cmd, "n3").expect("spawn");
        await_marked(ledger.run_id(), "sleep 61");
        held.release().expect("release"); // as if the shell had been reaped
        let shell = ProcessIdentity::of(child.id()).expect("alive");
        assert!(process::kill_identified(shell));
        child.wait().expect("reap the shell");
        drop(ledger);
        let report = heal_dead(store.path());
        let lines: Vec<&str> = report.actions.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("`sleep 61`"), "{lines:?}");
    }

    #[test]
    fn a_clean_or_missing_store_heals_nothing() {
        let store = tempfile::tempdir().expect("tempdir");
        assert!(heal_store(&store.path().join("none")).is_empty());
        let ledger = Ledger::open(store.path(), "test", None).expect("open");
        ledger.close().expect("close");
        let r = heal_store(store.path());
        assert!(r.is_empty() && r.live.is_empty() && r.retired == 0, "{r:?}");
    }

    #[test]
    fn a_garbled_ledger_is_healed_from_its_good_lines_and_names_file_and_line() {
        let store = tempfile::tempdir().expect("tempdir");
        let (run_id, path, ledger) = dead_run(store.path(), None);
        let faketime = store.path().join("n1.faketime");
        std::fs::write(&faketime, "+1.000\n").expect("write");
        let _f = ledger
            .record(Resource::File {
                path: faketime.clone(),
                what: "libfaketime file".into(),
            })
            .expect("record");
        drop(_f);
        drop(ledger);
        // Lines 1-2 are the run's; then damage, then a create cut short by
        // a kill in the middle of the write.
        let mut file = OpenOptions::new().append(true).open(&path).expect("open");
        file.write_all(b"\xff\xfe not json\n{\"event\":\"create\",\"id\":2,\"reso")
            .expect("damage");
        drop(file);
        let report = heal_dead(store.path());
        assert!(report.errors.is_empty(), "{report:?}");
        assert!(!faketime.exists(), "the good lines are healed");
        assert_eq!(report.actions.len(), 1, "{report:?}");
        assert_eq!(report.actions[0].run_id, run_id);
        assert_eq!(report.warnings.len(), 2, "{report:?}");
        let shown = path.display().to_string();
        assert!(
            report.warnings[0].starts_with(&format!("{shown} line 3: ")),
            "{report:?}"
        );
        assert!(
            report.warnings[1].starts_with(&format!("{shown} line 4: ")),
            "{report:?}"
        );
        assert!(!path.exists(), "healed, so retired");
        let again = heal_store(store.path());
        assert!(again.is_empty() && again.warnings.is_empty(), "{again:?}");
    }

    #[test]
    fn a_ledger_of_garbage_or_nothing_never_panics_and_is_retired() {
        let store = tempfile::tempdir().expect("tempdir");
        let dir = ledger_dir(store.path());
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for n in 0..50 {
            let len = (seed % 400) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            std::fs::write(dir.join(format!("g{n:02}.jsonl")), bytes).expect("write");
        }
        std::fs::write(dir.join("empty.jsonl"), b"").expect("write");
        let report = heal_store(store.path());
        assert!(report.actions.is_empty(), "{report:?}");
        assert!(report.errors.is_empty(), "{report:?}");
        assert_eq!(report.retired, 51, "{report:?}");
        assert!(
            report.warnings.iter().all(|w| w.contains(".jsonl line ")),
            "{report:?}"
        );
        assert!(heal_store(store.path()).is_empty());
    }

    #[test]
    fn a_ledger_too_large_or_unreadable_is_an_error_naming_the_file() {
        let store = tempfile::tempdir().expect("tempdir");
        let dir = ledger_dir(store.path());
        std::fs::create_dir_all(&dir).expect("mkdir");
        let big = dir.join("big.jsonl");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_LEDGER_BYTES + 1).expect("sparse file");
        drop(file);
        std::fs::create_dir(dir.join("adir.jsonl")).expect("mkdir");
        let report = heal_store(store.path());
        assert_eq!(report.errors.len(), 2, "{report:?}");
        assert!(report.errors[0].starts_with(&dir.join("adir.jsonl").display().to_string()));
        assert!(report.errors[1].starts_with(&big.display().to_string()));
        assert!(
            report.errors[1].contains("more than a ledger holds"),
            "{report:?}"
        );
        assert!(big.exists(), "left for a person to look at");
    }

    #[test]
    fn a_private_data_folder_is_removed_and_a_folder_not_faultlines_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ours = tmp.path().join("faultline-1a2b3c4d");
        std::fs::create_dir_all(ours.join("n1")).expect("mkdir");
        std::fs::write(ours.join("n1").join("wal"), b"x").expect("write");
        let done = undo_file(&ours, "private data folder").expect("removed");
        assert_eq!(
            done,
            Some(format!("removed private data folder {}", ours.display()))
        );
        assert!(!ours.exists());
        assert_eq!(undo_file(&ours, "private data folder").expect("gone"), None);
        let theirs = tmp.path().join("home");
        std::fs::create_dir(&theirs).expect("mkdir");
        let e = undo_file(&theirs, "private data folder").expect_err("refused");
        assert!(format!("{e}").contains("not one faultline makes"), "{e}");
        assert!(theirs.exists());
    }

    #[test]
    fn a_chain_that_is_not_faultlines_is_never_removed() {
        let e = undo_chain("INPUT").expect_err("refused");
        assert!(format!("{e}").contains("not one faultline makes"));
    }
}
