//! saferoot: race-free container root filesystems on the new Linux mount API.
//!
//! Every path inside a root is resolved from a root fd with `openat2`
//! (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`, through pathrs); every mount is
//! a file descriptor made with `fsopen`/`fsmount` or `open_tree`, configured
//! with `mount_setattr` while it is still detached, and attached with
//! `move_mount` onto a resolved fd. No path string that a container could
//! swap for a symlink is ever handed to a system call.
//!
//! The layers, each using only the ones listed before it:
//!
//! - `sys` (private, the only module allowed `unsafe`): raw system calls
//!   rustix lacks, and kernel feature probes;
//! - [`namespace`]: a safe `unshare` for the calling thread;
//! - [`features`]: which kernel features are there, probed once;
//! - [`path`]: [`Root`] and [`Handle`], confined resolution and creation;
//! - [`procfs`]: a private procfs for sysctls and fd checks;
//! - [`mount`]: [`Mount`], a detached mount fd, and its attachment;
//! - [`mountinfo`]: the mount table, from statmount/listmount or mountinfo;
//! - [`rootfs`]: a whole container root from a [`rootfs::RootfsSpec`];
//! - `oci` (feature `oci`): a [`rootfs::RootfsSpec`] from an OCI runtime-spec `config.json`.
//!
//! The minimum kernel is Linux 5.12; newer features are probed at run time.

#![warn(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "archive")]
pub mod archive;
pub mod attr;
pub mod error;
pub mod features;
mod fsthread;
mod journal;
pub mod mount;
pub mod mountinfo;
pub mod namespace;
#[cfg(feature = "oci")]
pub mod oci;
pub mod path;
pub mod procfs;
pub mod rootfs;
mod sys;

/// Test-only hooks (cargo feature `test-hooks`, not part of the API): a
/// seccomp filter that makes chosen system calls answer `ENOSYS`, so that
/// old-kernel paths can be exercised on a new kernel, the raw probes and
/// statmount call the tests compare the library against, and the
/// statmount decoder on its own (for the fuzz targets in `fuzz/`).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod testing {
    pub use crate::sys::probe::detached_mount_targets as probe_detached_mount_targets;
    pub use crate::sys::seccomp::{deny_with_enosys, fail_when_flagged};
    pub use crate::sys::statmount::statmount;
    pub use crate::sys::statmount::{decode_buffer as decode_statmount, StatmountInfo};

    /// The mount table the statmount backend builds from these answers
    /// (decoded with [`decode_statmount`]), without a system call.
    pub fn mount_table_from_statmount(
        infos: Vec<StatmountInfo>,
    ) -> crate::Result<crate::MountTable> {
        crate::mountinfo::table_from_statmount(infos)
    }
}

pub use attr::{MountAttr, Propagation, PropagationState};
pub use error::{Entry, Error, ErrorKind, Result};
pub use features::Feature;
pub use mount::{AttachError, AttachedMount, Mount, Scope};
pub use mountinfo::{MountEntry, MountTable};
pub use path::{Handle, NodeKind, Root};
pub use rootfs::RootfsSpec;

/// The README's examples, compiled as doctests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
