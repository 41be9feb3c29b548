//! The mount table. Placeholder: being written.

/// One mount.
#[derive(Debug, Clone)]
pub struct MountEntry {}

/// A mount table.
#[derive(Debug, Clone)]
pub struct MountTable {}
