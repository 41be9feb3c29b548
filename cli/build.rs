//! Link options for the `saferoot` binary.
//!
//! A position-independent executable is relocated by the dynamic loader at
//! every start: about sixteen thousand relative relocations for this
//! binary, each a write into `.data.rel.ro`. With packed relative
//! relocations (`-z pack-relative-relocs`, DT_RELR, read by glibc 2.36 and
//! later) the table shrinks from about 390 KiB to 5 KiB and the loader
//! applies it as a bitmap. The shipped build (`cli/dist.sh`) is static and
//! gains more; this is for every other build (docs/performance.md,
//! "Linking").
//!
//! The option is added only when the C compiler links a test program with
//! it (binutils 2.38+ or lld, and a C library that has the matching symbol
//! version); otherwise the binary is linked as before. Set
//! `SAFEROOT_RELR=0` to leave it out.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SAFEROOT_RELR");
    println!("cargo:rerun-if-env-changed=CC");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" || std::env::var("SAFEROOT_RELR").as_deref() == Ok("0") {
        return;
    }
    // Only for a native build: a cross linker is not the `cc` probed here.
    if std::env::var("TARGET").ok() != std::env::var("HOST").ok() {
        return;
    }
    if links_with_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    } else {
        println!(
            "cargo:warning=the linker does not take -z pack-relative-relocs; \
             saferoot is linked without it (slower start, see docs/performance.md)"
        );
    }
}

/// Whether the C compiler links a position-independent executable with
/// packed relative relocations.
fn links_with_relr() -> bool {
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let src = out.join("relr-probe.c");
    let bin = out.join("relr-probe");
    if std::fs::write(&src, "int main(void) { return 0; }\n").is_err() {
        return false;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    Command::new(cc)
        .args(["-pie", "-fPIE", "-Wl,-z,pack-relative-relocs", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
