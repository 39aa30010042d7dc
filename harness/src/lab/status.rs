//! `lab status`: for each host, whether its namespace, its holder process
//! and its sshd are there.

use super::state::LabState;
use super::system;
use serde::Serialize;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct HostStatus {
    pub ns: String,
    pub addr: String,
    pub namespace: bool,
    pub process: bool,
    pub sshd: bool,
}

#[derive(Debug, Serialize)]
pub struct LabStatus {
    pub dir: String,
    pub complete: bool,
    pub hosts: Vec<HostStatus>,
}

impl LabStatus {
    pub fn healthy(&self) -> bool {
        self.complete
            && self
                .hosts
                .iter()
                .all(|h| h.namespace && h.process && h.sshd)
    }
}

pub fn status(st: &LabState) -> LabStatus {
    let namespaces = system::netns_list();
    let hosts = st
        .hosts
        .iter()
        .map(|h| HostStatus {
            ns: h.ns.clone(),
            addr: h.addr.clone(),
            namespace: namespaces.contains(&h.ns),
            process: h.pid.is_some_and(|p| {
                system::alive(p as i32) && system::cmdline(p as i32).contains("unshare")
            }),
            sshd: sshd_answers(&h.addr),
        })
        .collect();
    LabStatus {
        dir: st.dir.display().to_string(),
        complete: st.complete,
        hosts,
    }
}

fn sshd_answers(addr: &str) -> bool {
    let Ok(sock) = format!("{addr}:22").parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut banner = [0u8; 4];
    s.read_exact(&mut banner).is_ok() && &banner == b"SSH-"
}
