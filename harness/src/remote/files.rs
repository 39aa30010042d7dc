//! An adapter's files on remote hosts (docs/adapters.md, remote mode): its
//! directory packed into one tar file, uploaded to every host (skipped
//! where the same checksum is there) and unpacked fresh into the host's
//! adapter folder; then its `requires` checked on every host, its `install`
//! run (as root) on a host that lacks one, and checked again.
//!
//! Guarantees: a directory too big to be an adapter's (more than
//! [`MAX_DIR_BYTES`] or [`MAX_DIR_FILES`]) is refused before anything is
//! sent, naming it; a host that still lacks a required program after its
//! install is an error naming the host, the programs and the install's
//! output, before any node starts.

use crate::ssh::{all_ok, sh_quote, sha256_file, Hosts, Session, SshError, Upload};
use crate::system::RemoteFiles;
use anyhow::{bail, Context};
use std::path::Path;
use std::time::Duration;

/// The most bytes of files an adapter's directory may hold (remote mode
/// uploads all of it).
pub const MAX_DIR_BYTES: u64 = 64 << 20;
/// The most files and folders it may hold.
pub const MAX_DIR_FILES: usize = 10_000;
/// How long one host's `install` may take.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Refuses a directory too big to upload as an adapter's: the message
/// names it and says what to do.
pub fn check_size(dir: &Path) -> Result<(), String> {
    let mut bytes = 0u64;
    let mut files = 0usize;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            let meta = entry
                .metadata()
                .map_err(|e| format!("cannot read {}: {e}", entry.path().display()))?;
            files += 1;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                bytes += meta.len();
            }
            if bytes > MAX_DIR_BYTES || files > MAX_DIR_FILES {
                return Err(format!(
                    "remote mode uploads the adapter file's whole directory {} to every host, and it holds more than {} MiB or {MAX_DIR_FILES} files; put the adapter file and what it uses in a folder of their own",
                    dir.display(),
                    MAX_DIR_BYTES >> 20
                ));
            }
        }
    }
    Ok(())
}

/// A packed directory in this machine's temporary folder, removed on drop.
struct Packed {
    path: std::path::PathBuf,
}

impl Drop for Packed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Packs `dir` into a tar file (sorted, fixed times and owners, so the
/// same files give the same checksum).
fn pack(dir: &Path) -> anyhow::Result<Packed> {
    let packed = Packed {
        path: std::env::temp_dir().join(format!(
            "faultline-adapter-{}-{:08x}.tar",
            std::process::id(),
            rand::random::<u32>()
        )),
    };
    let out = std::process::Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0"])
        .args(["--numeric-owner", "--exclude=__pycache__", "-cf"])
        .arg(&packed.path)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .output()
        .context("running tar to pack the adapter's directory")?;
    if !out.status.success() {
        bail!(
            "tar could not pack {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(packed)
}

/// Uploads the adapter's directory to every host's `files.remote_dir`,
/// replacing what was there. Returns each host's upload.
pub fn upload(hosts: &Hosts, files: &RemoteFiles) -> anyhow::Result<Vec<Upload>> {
    check_size(&files.dir).map_err(crate::exit::bad_input)?;
    let tar = pack(&files.dir)?;
    let sum = sha256_file(tar.path.as_path()).context("reading the packed adapter directory")?;
    let remote_tar = format!("{}.tar", files.remote_dir);
    let unpack = format!(
        "rm -rf {d} && mkdir -p {d} && tar -xf {t} -C {d} && echo unpacked",
        d = sh_quote(&files.remote_dir),
        t = sh_quote(&remote_tar)
    );
    let results = hosts.each(|_, s| -> Result<Upload, SshError> {
        let upload = s.upload_if_changed(tar.path.as_path(), &remote_tar, &sum)?;
        s.run_root(&unpack)?;
        Ok(upload)
    });
    all_ok(results)
        .map_err(anyhow::Error::new)
        .with_context(|| format!("uploading {} to the hosts", files.dir.display()))
}

/// Shell: one line `missing PROGRAM` for each of `programs` the host lacks
/// (a name not on PATH, or an absolute path that is not an executable).
pub fn requires_script(programs: &[String]) -> String {
    let mut s = String::new();
    for p in programs {
        let q = sh_quote(p);
        if p.starts_with('/') {
            s.push_str(&format!("[ -x {q} ] || echo missing {q}; "));
        } else {
            s.push_str(&format!(
                "command -v {q} >/dev/null 2>&1 || echo missing {q}; "
            ));
        }
    }
    s.push_str("true");
    s
}

/// The programs a `requires_script` run said are missing.
pub fn parse_missing(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("missing "))
        .map(|p| p.trim().to_string())
        .collect()
}

/// On every host: checks `files.requires` (and the node's program); runs
/// `install` as root where something is missing, then checks again.
/// Returns, per host, whether install ran.
pub fn ensure_requires(
    hosts: &Hosts,
    files: &RemoteFiles,
    install: Option<&str>,
) -> anyhow::Result<Vec<bool>> {
    let mut programs = vec![files.program.clone()];
    programs.extend(files.requires.iter().cloned());
    let check = requires_script(&programs);
    let results = hosts.each(|_, s| one_host(s, &check, install));
    let mut ran = Vec::new();
    let mut lacking = Vec::new();
    for (r, s) in results.into_iter().zip(hosts.sessions()) {
        match r {
            Ok(installed) => ran.push(installed),
            Err(why) => lacking.push(format!("{}: {why}", s.name())),
        }
    }
    if !lacking.is_empty() {
        bail!(
            "hosts lack programs the adapter requires:\n  {}",
            lacking.join("\n  ")
        );
    }
    Ok(ran)
}

/// One host's check, install and check again: Ok(whether install ran), or
/// what is missing and why.
fn one_host(s: &Session, check: &str, install: Option<&str>) -> Result<bool, String> {
    let missing = parse_missing(&s.run_root(check).map_err(|e| e.to_string())?);
    if missing.is_empty() {
        return Ok(false);
    }
    let Some(install) = install else {
        return Err(format!(
            "{} not found, and the adapter has no install command",
            missing.join(", ")
        ));
    };
    let out = s.exec_root(install, INSTALL_TIMEOUT).map_err(|e| {
        format!(
            "{} not found; install could not run: {e}",
            missing.join(", ")
        )
    })?;
    let tail = |text: &str| {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    };
    if !out.success() {
        return Err(format!(
            "{} not found; install ({install}) exited with status {}: {}",
            missing.join(", "),
            out.status,
            tail(&format!("{}\n{}", out.stdout, out.stderr))
        ));
    }
    let still = parse_missing(&s.run_root(check).map_err(|e| e.to_string())?);
    if !still.is_empty() {
        return Err(format!(
            "{} still not found after install ({install}) succeeded",
            still.join(", ")
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_are_checked_by_path_or_on_path() {
        let script = requires_script(&[
            "sh".to_string(),
            "no-such-program-here".to_string(),
            "/bin/sh".to_string(),
            "/no/such/file".to_string(),
        ]);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        assert_eq!(
            parse_missing(&String::from_utf8_lossy(&out.stdout)),
            vec!["no-such-program-here", "/no/such/file"]
        );
    }

    #[test]
    fn a_directory_too_big_to_upload_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("node.sh"), "exit 0\n").expect("write");
        assert_eq!(check_size(dir.path()), Ok(()));
        let big = std::fs::File::create(dir.path().join("data.bin")).expect("create");
        big.set_len(MAX_DIR_BYTES + 1).expect("sparse file");
        let why = check_size(dir.path()).expect_err("too big");
        assert!(why.contains(&dir.path().display().to_string()), "{why}");
        assert!(why.contains("folder of their own"), "{why}");
    }

    #[test]
    fn the_same_files_pack_to_the_same_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/client.py"), "print(1)\n").expect("write");
        let a = sha256_file(&pack(dir.path()).expect("pack").path).expect("sum");
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("sub/client.py"), "print(1)\n").expect("write");
        let b = sha256_file(&pack(dir.path()).expect("pack").path).expect("sum");
        assert_eq!(a, b, "a rewrite with the same bytes is not a change");
        std::fs::write(dir.path().join("sub/client.py"), "print(2)\n").expect("write");
        let c = sha256_file(&pack(dir.path()).expect("pack").path).expect("sum");
        assert_ne!(a, c);
    }
}
