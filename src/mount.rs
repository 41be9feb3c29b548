//! Mount. Placeholder.
/// Mount.
#[derive(Debug)]
pub struct Mount {}
/// AttachedMount.
#[derive(Debug)]
pub struct AttachedMount {}
