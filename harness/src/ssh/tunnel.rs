//! ProxyJump: an SSH connection to a host reached through another one.
//!
//! libssh2 runs a session over a socket it owns, so a jump is a socket pair:
//! the target's session gets one end; a pump thread moves bytes between the
//! other end and a `direct-tcpip` channel that the jump host's session opens
//! to the target (OpenSSH's `ssh -J` does the same with its own process).
//!
//! Guarantees: the pump ends when either side closes (the target's session
//! dropped, or the jump host closing the channel), and then closes the jump
//! session; it never blocks on one direction while the other has data
//! (both are non-blocking, with `poll` on the two sockets between rounds).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Starts the pump for `channel` (on `jump`, whose socket is `jump_fd`);
/// returns the end of the pair the target's session runs over.
pub fn start(
    jump: ssh2::Session,
    jump_fd: RawFd,
    channel: ssh2::Channel,
) -> std::io::Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    theirs.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("ssh-jump".into())
        .spawn(move || pump(jump, jump_fd, channel, theirs))?;
    Ok(ours)
}

fn pump(jump: ssh2::Session, jump_fd: RawFd, mut channel: ssh2::Channel, mut local: UnixStream) {
    jump.set_blocking(false);
    let mut to_remote: Vec<u8> = Vec::new();
    let mut to_local: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let local_fd = local.as_raw_fd();
    'pump: loop {
        let mut progressed = false;
        if to_remote.is_empty() {
            match local.read(&mut buf) {
                Ok(0) => break 'pump, // the target's session is gone
                Ok(n) => {
                    to_remote.extend_from_slice(&buf[..n]);
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break 'pump,
            }
        }
        if !to_remote.is_empty() {
            match channel.write(&to_remote) {
                Ok(n) => {
                    to_remote.drain(..n);
                    progressed |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break 'pump,
            }
        }
        if to_local.is_empty() {
            match channel.read(&mut buf) {
                Ok(0) if channel.eof() => break 'pump,
                Ok(0) => {}
                Ok(n) => {
                    to_local.extend_from_slice(&buf[..n]);
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break 'pump,
            }
        }
        if !to_local.is_empty() {
            match local.write(&to_local) {
                Ok(n) => {
                    to_local.drain(..n);
                    progressed |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break 'pump,
            }
        }
        if !progressed {
            wait(
                jump_fd,
                local_fd,
                !to_local.is_empty(),
                Duration::from_millis(20),
            );
        }
    }
    jump.set_blocking(true);
    jump.set_timeout(2000);
    let _ = channel.close();
    let _ = jump.disconnect(None, "jump done", None);
}

/// Waits until the jump socket or the local end has data (or the local
/// end can take more, when `want_write`), or the timeout passes.
fn wait(jump_fd: RawFd, local_fd: RawFd, want_write: bool, timeout: Duration) {
    let mut fds = [
        libc::pollfd {
            fd: jump_fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: local_fd,
            events: libc::POLLIN | if want_write { libc::POLLOUT } else { 0 },
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds on the stack, count 2; both fds belong to
    // sockets this thread owns for the whole call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), 2, timeout.as_millis() as i32);
    }
}
