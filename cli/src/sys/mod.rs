//! The command's own system calls: process creation and signal plumbing
//! (`process`), and the program's privileges that no safe wrapper covers
//! (`privileges`: the bounding and ambient sets by number, seccomp). This
//! is the one module of the command with `unsafe` code (the crate denies
//! `unsafe_code`; only this module's files allow it); every `unsafe` block
//! carries a `SAFETY:` comment.

#![allow(unsafe_code)]

pub mod alloc;
pub mod exec;
pub mod fds;
pub mod privileges;
pub mod process;

/// The errno of the last failed libc call.
fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
