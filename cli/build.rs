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
//!
//! `SAFEROOT_LINK_ORDER=FILE` (set by `cli/dist.sh`) links the binary with
//! lld and lays out the functions named in FILE (`cli/hot-functions.txt`,
//! one mangled name per line) first and together: the code a sandbox's
//! start runs then fills a few contiguous pages instead of touching most
//! of the binary's text (docs/performance.md, "Hot code together").

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SAFEROOT_RELR");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=SAFEROOT_LINK_ORDER");
    let order = std::env::var_os("SAFEROOT_LINK_ORDER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(file) = &order {
        // Names not in this build are skipped (the list may be older than
        // the code): the order is a layout hint, never a link error.
        println!("cargo:rerun-if-changed={}", file.display());
        println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            file.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" || std::env::var("SAFEROOT_RELR").as_deref() == Ok("0") {
        return;
    }
    // Only for a native build: a cross linker is not the `cc` probed here.
    if std::env::var("TARGET").ok() != std::env::var("HOST").ok() {
        return;
    }
    if links_with_relr(order.is_some()) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    } else {
        println!(
            "cargo:warning=the linker does not take -z pack-relative-relocs; \
             saferoot is linked without it (slower start, see docs/performance.md)"
        );
    }
}

/// Whether the C compiler links a position-independent executable with
/// packed relative relocations (through lld when `lld`).
fn links_with_relr(lld: bool) -> bool {
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
        .args(lld.then_some("-fuse-ld=lld"))
        .args(["-pie", "-fPIE", "-Wl,-z,pack-relative-relocs", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        // (lld before 15 only warns about the option, and drops it.)
        .map(|o| o.status.success() && o.stderr.is_empty())
        .unwrap_or(false)
}
