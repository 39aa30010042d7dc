//! What a lab is made of, by name, and the record of it on disk
//! (`DIR/lab.json`), so that `lab down` can take apart exactly what
//! `lab up` made, even a lab whose `up` stopped half way.
//!
//! Every name the lab creates starts with [`PREFIX`]: namespaces
//! `fl-lab-1..N`, veths `fl-lab-v1..N`, the bridge `fl-lab-br`; `lab down`
//! also scans for these names, so a lost `lab.json` leaves nothing behind.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PREFIX: &str = "fl-lab-";
pub const BRIDGE: &str = "fl-lab-br";
/// The lab's private /24; nothing else on the machine may use it.
pub const SUBNET: &str = "10.77.0";
pub const BRIDGE_ADDR: &str = "10.77.0.1";
/// Comment on the one root-namespace iptables rule the lab may add.
pub const RULE_COMMENT: &str = "faultline-lab";
/// Where hosts keep their files (each host sees its own copy).
pub const REMOTE_DIR: &str = "/var/lib/faultline";
pub const MAX_HOSTS: usize = 100;

pub fn ns_name(index: usize) -> String {
    format!("{PREFIX}{index}")
}

pub fn veth_name(index: usize) -> String {
    format!("{PREFIX}v{index}")
}

/// Host `index` (1-based) gets `10.77.0.(10+index)`.
pub fn host_addr(index: usize) -> String {
    assert!(
        (1..=MAX_HOSTS).contains(&index),
        "host index {index} out of range"
    );
    format!("{SUBNET}.{}", 10 + index)
}

/// Whether a namespace or link name is one the lab makes.
pub fn is_lab_name(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// The record in `DIR/lab.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    pub dir: PathBuf,
    pub hosts: Vec<LabHost>,
    /// The bridge exists (set once made).
    pub bridge: bool,
    /// The lab added the FORWARD accept rule in the root namespace.
    pub forward_rule: bool,
    /// The lab created `/var/lib/faultline` on this machine (to mount over).
    pub created_remote_dir: bool,
    /// `up` finished.
    pub complete: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabHost {
    pub index: usize,
    pub ns: String,
    pub veth: String,
    pub addr: String,
    /// The `unshare` process that holds the host's PID namespace.
    pub pid: Option<u32>,
}

impl LabHost {
    pub fn new(index: usize) -> LabHost {
        LabHost {
            index,
            ns: ns_name(index),
            veth: veth_name(index),
            addr: host_addr(index),
            pid: None,
        }
    }

    /// The host's own folder under the lab folder.
    pub fn dir(&self, lab_dir: &Path) -> PathBuf {
        lab_dir.join("hosts").join(&self.ns)
    }
}

impl LabState {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("lab.json")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Option<LabState>> {
        use anyhow::Context;
        let path = LabState::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a lab record", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes atomically (temp file and rename), so a crash never leaves half a record.
    pub fn save(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        let path = LabState::path(&self.dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).expect("lab state serializes"),
        )
        .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("renaming {} into place", tmp.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_limits_and_are_recognised() {
        for i in [1, 9, 10, MAX_HOSTS] {
            assert!(
                ns_name(i).len() <= 15 && veth_name(i).len() <= 15,
                "IFNAMSIZ is 16 with the NUL"
            );
            assert!(is_lab_name(&ns_name(i)) && is_lab_name(&veth_name(i)));
        }
        assert!(is_lab_name(BRIDGE));
        assert!(!is_lab_name("fl-other") && !is_lab_name("eth0"));
        assert_eq!(host_addr(1), "10.77.0.11");
        assert_eq!(host_addr(MAX_HOSTS), "10.77.0.110");
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let st = LabState {
            dir: dir.path().to_path_buf(),
            hosts: vec![
                LabHost::new(1),
                LabHost {
                    pid: Some(42),
                    ..LabHost::new(2)
                },
            ],
            bridge: true,
            forward_rule: false,
            created_remote_dir: true,
            complete: false,
            created_at: "now".into(),
        };
        st.save().unwrap();
        assert_eq!(LabState::load(dir.path()).unwrap(), Some(st));
        std::fs::write(LabState::path(dir.path()), "{").unwrap();
        let err = LabState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("lab.json is not a lab record"), "{err}");
        assert_eq!(LabState::load(&dir.path().join("none")).unwrap(), None);
    }
}
