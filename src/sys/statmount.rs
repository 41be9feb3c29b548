//! statmount(2) and listmount(2) (Linux 6.8). Placeholder: being written.
