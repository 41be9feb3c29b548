//! Root and Handle. Placeholder.
/// Root.
#[derive(Debug)]
pub struct Root {}
/// Handle.
#[derive(Debug)]
pub struct Handle {}
