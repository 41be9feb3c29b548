//! Root filesystem assembly: the job of runc's rootfs setup, fd-based.
//!
//! A [`RootfsSpec`] says what the root should contain; [`options`] parses
//! mount options the way runc and crun spell them.

pub mod options;
pub mod spec;

pub use options::{parse_options, BindKind, MountOptions};
pub use spec::{DeviceKind, DeviceSpec, IdMapping, MountSpec, PropagationSetting, RootfsSpec};
