//! What the sandbox's chain tells the top process while it starts, for
//! `--info-fd` and `--json-status-fd`.
//!
//! A `SOCK_SEQPACKET` socket pair: the top process holds one end; every
//! process of the chain holds a close-on-exec copy of the other until it
//! execs the program or exits, so the top sees end-of-file when none is
//! left. Each message is one packet:
//!
//! - `P`, with the sender's credentials (`SCM_CREDENTIALS`): sent by the
//!   sandbox's init itself; the kernel translates its pid into the top
//!   process's pid namespace, however many pid namespaces lie between;
//! - `N` + length + name + 8 bytes: one of the program's namespaces and
//!   its inode number, read by the program's process once it is in its
//!   final (locked) mount namespace;
//! - `R`: the sandbox is set up (root entered, mounts locked); the
//!   program is about to wait for `--block-fd` and start;
//! - `X`: the program is being exec'd;
//! - `E`: the exec failed.
//!
//! On `R` the top process writes the info document: the pid of the
//! sandbox's first process (its init, or the program when there is none)
//! and the inode numbers of its namespaces, read through saferoot's own
//! procfs. When the sandbox ends after `X` and without `E`, the exit code
//! follows on `--json-status-fd`. bubblewrap writes the info document
//! before it sets the sandbox up; saferoot writes it once the namespaces
//! are final (the program's mount namespace is the locked copy made at
//! the end of setup), still before `--block-fd` is waited on.

use std::io::Write;
use std::os::fd::OwnedFd;

use rustix::process::Pid;

use crate::namespaces::Namespaces;
use crate::sandbox::FdArg;

/// The chain's end.
#[derive(Debug)]
pub struct Reporter(OwnedFd);

impl Reporter {
    fn send(&self, msg: &[u8]) {
        // Best effort: a top process that went away has nothing to learn.
        let _ = rustix::net::send(&self.0, msg, rustix::net::SendFlags::empty());
    }

    /// Sent by the init: its pid travels as credentials, translated by the
    /// kernel for the receiver.
    pub fn init_pid(&self) {
        use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, UCred};
        let cred = UCred {
            pid: rustix::process::getpid(),
            uid: rustix::process::getuid(),
            gid: rustix::process::getgid(),
        };
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmCredentials(cred));
        let _ = rustix::net::sendmsg(
            &self.0,
            &[std::io::IoSlice::new(b"P")],
            &mut control,
            rustix::net::SendFlags::empty(),
        );
    }

    /// One of the program's namespaces: its name and inode number.
    pub fn namespace(&self, name: &str, id: u64) {
        let mut m = vec![b'N'];
        m.extend_from_slice(&id.to_le_bytes());
        m.extend_from_slice(name.as_bytes());
        self.send(&m);
    }

    /// Set up.
    pub fn ready(&self) {
        self.send(b"R");
    }

    /// About to exec.
    pub fn exec(&self) {
        self.send(b"X");
    }

    /// The exec failed.
    pub fn exec_failed(&self) {
        self.send(b"E");
    }
}

/// The top process's end.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    /// The init's pid, once told.
    pub init: Option<Pid>,
    /// The program's namespaces, as told.
    pub namespaces: Vec<(String, u64)>,
    /// `R` seen.
    pub ready: bool,
    /// `X` seen.
    pub exec: bool,
    /// `E` seen.
    pub exec_failed: bool,
}

/// A new report channel (both ends close-on-exec).
pub fn pipe() -> std::io::Result<(Listener, Reporter)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (r, w) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::sockopt::set_socket_passcred(&r, true)?;
    Ok((
        Listener {
            fd: r,
            init: None,
            namespaces: Vec::new(),
            ready: false,
            exec: false,
            exec_failed: false,
        },
        Reporter(w),
    ))
}

impl Listener {
    /// Reads messages until `R` (`until_ready`) or end of file, which
    /// comes when every process of the chain has exec'd or exited.
    pub fn read(&mut self, until_ready: bool) {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let mut buf = [0u8; 300];
        loop {
            if until_ready && self.ready {
                return;
            }
            let mut space =
                [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let n = match rustix::net::recvmsg(
                &self.fd,
                &mut [std::io::IoSliceMut::new(&mut buf)],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(m) if m.bytes == 0 => return,
                Ok(m) => m.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return,
            };
            let msg = &buf[..n];
            match msg[0] {
                b'P' => {
                    for c in control.drain() {
                        if let RecvAncillaryMessage::ScmCredentials(cred) = c {
                            self.init = Some(cred.pid);
                        }
                    }
                }
                b'N' if n > 9 => {
                    let mut id = [0u8; 8];
                    id.copy_from_slice(&msg[1..9]);
                    let name = String::from_utf8_lossy(&msg[9..]).into_owned();
                    self.namespaces.push((name, u64::from_le_bytes(id)));
                }
                b'R' => self.ready = true,
                b'X' => self.exec = true,
                b'E' => self.exec_failed = true,
                _ => {}
            }
        }
    }
}

/// The namespaces the documents list, as bubblewrap lists them: the
/// mount namespace, and each other one the sandbox has of its own (not
/// the user namespace, which is made in steps).
pub fn listed(ns: &Namespaces) -> Vec<&'static str> {
    [
        ("cgroup", ns.cgroup),
        ("ipc", ns.ipc),
        ("mnt", true),
        ("net", ns.net),
        ("pid", ns.pid),
        ("uts", ns.uts),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The inode numbers of `pid`'s listed namespaces, those it can read.
pub fn namespace_ids(pid: Pid, ns: &Namespaces) -> Vec<(String, u64)> {
    let Ok(procfs) = saferoot::procfs::Procfs::new() else {
        return Vec::new();
    };
    let raw = pid.as_raw_nonzero().get() as u32;
    listed(ns)
        .into_iter()
        .filter_map(|name| {
            procfs
                .ns_inode(name, Some(raw))
                .ok()
                .map(|i| (name.to_string(), i))
        })
        .collect()
}

fn write_all(fd: &FdArg, text: &str) {
    let dup = match fd.fd.try_clone() {
        Ok(d) => d,
        Err(e) => {
            log::warn!("write to fd {}: {e}", fd.number);
            return;
        }
    };
    let mut f = std::fs::File::from(dup);
    if let Err(e) = f.write_all(text.as_bytes()) {
        log::warn!("write to fd {}: {e}", fd.number);
    }
}

/// Writes the info document (`--info-fd`, multi-line) and the first
/// status document (`--json-status-fd`, one line) about `pid`.
pub fn write_info(pid: Pid, ids: &[(String, u64)], info: Option<&FdArg>, status: Option<&FdArg>) {
    let raw = pid.as_raw_nonzero().get();
    if let Some(fd) = info {
        let mut s = format!("{{\n    \"child-pid\": {raw}");
        for (name, id) in ids {
            s += &format!(",\n    \"{name}-namespace\": {id}");
        }
        s += "\n}\n";
        write_all(fd, &s);
    }
    if let Some(fd) = status {
        let mut s = format!("{{ \"child-pid\": {raw}");
        for (name, id) in ids {
            s += &format!(", \"{name}-namespace\": {id}");
        }
        s += " }\n";
        write_all(fd, &s);
    }
}

/// The last status document: the program's exit code.
pub fn write_exit(status: &FdArg, code: i32) {
    write_all(status, &format!("{{ \"exit-code\": {code} }}\n"));
}
