//! Root filesystem assembly: the job of runc's rootfs setup, fd-based.
//!
//! A [`RootfsSpec`] says what the root should contain. [`plan()`] checks it
//! and decides every mount before anything changes; [`assemble`] carries the
//! plan out with the detached or the in-place [`Strategy`];
//! [`AssembledRoot::enter`] makes it the process's root.

mod assemble;
mod copyup;
mod dev;
pub mod enter;
pub mod lock;
pub mod mask;
pub mod minimal_ns;
mod mounts;
pub mod options;
pub mod plan;
pub mod policy;
pub mod sources;
pub mod spec;

pub use assemble::{
    assemble, assemble_plan, assemble_plan_with, assemble_with, AssembleOptions, AssembledRoot,
    BeforeMount, Strategy,
};
pub use enter::EnterMethod;
pub use lock::{InPlaceLock, MountLock};
pub use minimal_ns::{HostView, MinimalNamespace, MINIMAL_MOUNT_POINT};
pub use options::{parse_options, BindKind, MountOptions};
pub use plan::{plan, MountKind, Plan, PlannedMount};
pub use spec::{
    DeviceKind, DeviceSpec, IdMapping, MountSpec, Namespaces, PropagationSetting, RootfsSpec,
};
