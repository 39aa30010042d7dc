//! Where things live on a remote host, under one folder (default
//! `/var/lib/faultline`): the deployed executable, an adapter's directory,
//! and per node its data folder, pidfile and log; per run
//! (`runs/<run id>/`) the libfaketime timestamp files, so that what a run
//! that died left is found by its id ([`super::leftovers`]).

use crate::ssh::sh_quote;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub dir: String,
    /// The run whose files this layout names (see [`Layout::for_run`]).
    run: Option<String>,
}

impl Layout {
    pub fn new(dir: impl Into<String>) -> Layout {
        Layout {
            dir: dir.into(),
            run: None,
        }
    }

    /// The same folder, for run `run_id`: its clock files go into the
    /// run's own folder.
    pub fn for_run(self, run_id: &str) -> Layout {
        Layout {
            run: Some(run_id.to_string()),
            ..self
        }
    }

    /// The folder of run `run_id`'s files on the host.
    pub fn run_dir(&self, run_id: &str) -> String {
        format!("{}/runs/{run_id}", self.dir)
    }

    /// Run `run_id`'s auth token on the host (`--auth`; mode 0600, in the
    /// run's folder, so whatever removes the run's files removes it).
    pub fn auth_token(&self, run_id: &str) -> String {
        format!("{}/auth-token", self.run_dir(run_id))
    }

    /// Run `run_id`'s TLS files of the host's node on the host (`--tls`:
    /// its certificate, its key and the run's CA, each mode 0600, in the
    /// run's folder, so whatever removes the run's files removes them).
    pub fn tls(&self, run_id: &str) -> crate::system::SiteTls {
        let dir = self.run_dir(run_id);
        crate::system::SiteTls {
            cert: format!("{dir}/tls-node.pem"),
            key: format!("{dir}/tls-node.key"),
            ca: format!("{dir}/tls-ca.pem"),
        }
    }

    /// The deployed executable.
    pub fn bin(&self) -> String {
        format!("{}/bin/faultline", self.dir)
    }

    /// An uploaded program called `name` (a system's own binary).
    pub fn program(&self, name: &str) -> String {
        format!("{}/bin/{name}", self.dir)
    }

    /// Where an adapter's directory goes (`{{adapter_dir}}` on the host).
    pub fn adapter(&self, name: &str) -> String {
        format!("{}/adapters/{name}", self.dir)
    }

    /// One node's folder (its working directory and data).
    pub fn node_dir(&self, node: &str) -> String {
        format!("{}/nodes/{node}", self.dir)
    }

    pub fn pidfile(&self, node: &str) -> String {
        format!("{}/node.pid", self.node_dir(node))
    }

    pub fn log(&self, node: &str) -> String {
        format!("{}/node.log", self.node_dir(node))
    }

    /// The libfaketime timestamp file the node reads its clock fault from:
    /// in the run's folder when the layout has a run.
    pub fn faketime(&self, node: &str) -> String {
        match &self.run {
            Some(run) => format!("{}/{node}.faketime", self.run_dir(run)),
            None => format!("{}/faketime", self.node_dir(node)),
        }
    }

    /// Shell: `PID=...` from the pidfile, or exit 0 with `gone` printed.
    pub fn read_pid(&self, node: &str) -> String {
        format!(
            "PID=$(cat {} 2>/dev/null) || {{ echo gone; exit 0; }}; [ -n \"$PID\" ] || {{ echo gone; exit 0; }}",
            sh_quote(&self.pidfile(node))
        )
    }
}

/// Node names become path parts: letters, digits, `-`, `_`, `.` only.
pub fn check_node_name(node: &str) -> Result<(), String> {
    let ok = !node.is_empty()
        && node != "."
        && node != ".."
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node name {node:?} must be letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_under_the_folder() {
        let l = Layout::new("/var/lib/faultline");
        assert_eq!(l.bin(), "/var/lib/faultline/bin/faultline");
        assert_eq!(l.pidfile("n1"), "/var/lib/faultline/nodes/n1/node.pid");
        assert_eq!(l.log("n1"), "/var/lib/faultline/nodes/n1/node.log");
        assert_eq!(l.faketime("n1"), "/var/lib/faultline/nodes/n1/faketime");
        let l = l.for_run("1a2b3c4d");
        assert_eq!(
            l.faketime("n1"),
            "/var/lib/faultline/runs/1a2b3c4d/n1.faketime"
        );
        assert_eq!(l.pidfile("n1"), "/var/lib/faultline/nodes/n1/node.pid");
    }

    #[test]
    fn node_names_cannot_escape_the_folder() {
        assert!(check_node_name("n1").is_ok());
        assert!(check_node_name("node-2_a.b").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "a b", "$(x)"] {
            assert!(check_node_name(bad).is_err(), "{bad:?}");
        }
    }
}
