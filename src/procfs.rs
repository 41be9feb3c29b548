//! Private procfs. Placeholder: being written.
