//! Gives the shared library its soname, so that programs linked against
//! `libsaferoot.so` record `libsaferoot.so.0` and keep working across
//! ABI-compatible releases.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsaferoot.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
