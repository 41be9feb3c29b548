//! Handing fds from one process of the chain to another over a unix
//! socket pair made before their fork (`SCM_RIGHTS`): the network
//! namespace saferoot makes for the init (`crate::net_ahead`) and the
//! locked mount namespace the program's process sends the init
//! (`crate::lock`). Each message is one byte of payload, which says what
//! it carries, and at most [`MAX_FDS`] fds.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The most fds one message carries.
pub const MAX_FDS: usize = 2;

/// Sends `fds` with the payload byte `what` over `sock`; `EINVAL` for more
/// than [`MAX_FDS`] fds.
pub fn send(sock: impl AsFd, what: u8, fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if fds.len() > MAX_FDS || !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::INVAL);
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&[what])],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map(|_| ())
}

/// Receives one message from `sock` (retrying when interrupted): its
/// payload byte and the fds it carried, close-on-exec. `None` at
/// end-of-file.
pub fn receive(sock: impl AsFd) -> Result<Option<(u8, Vec<OwnedFd>)>, Errno> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let received = loop {
        match rustix::net::recvmsg(
            sock.as_fd(),
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => continue,
            r => break r?,
        }
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = msg {
            fds.extend(got);
        }
    }
    Ok((received.bytes > 0).then_some((byte[0], fds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{AddressFamily, SocketFlags, SocketType};

    #[test_log::test]
    fn fds_and_their_byte_arrive_then_end_of_file() {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        send(&a, b'x', &[r.as_fd(), w.as_fd()]).unwrap();
        let too_many = [r.as_fd(), w.as_fd(), a.as_fd()];
        assert_eq!(send(&a, b'y', &too_many), Err(Errno::INVAL));
        drop(a);
        let (what, fds) = receive(&b).unwrap().expect("a message");
        assert_eq!(what, b'x');
        assert_eq!(fds.len(), 2);
        // The fds received are the pipe's two ends: a byte written to the
        // second comes out of the first.
        rustix::io::write(&fds[1], b"z").unwrap();
        let mut got = [0u8; 1];
        rustix::io::read(&fds[0], &mut got).unwrap();
        assert_eq!(&got, b"z");
        assert!(receive(&b).unwrap().is_none(), "end-of-file");
    }
}
