#!/bin/bash
# Builds the saferoot command as it is meant to be shipped and prints the
# path of the binary on stdout:
#
#   cli/dist.sh
#
# - statically linked against musl (the Rust target ARCH-unknown-linux-musl):
#   no dynamic loader, no shared libraries to map and bind at each start,
#   and none of glibc's start-up CPU detection, whose CPUID instructions
#   each trap to the hypervisor on a virtual machine;
# - still position-independent (static-pie), so the image is placed at a
#   random address;
# - link-time optimisation and one codegen unit (the `dist` profile in
#   Cargo.toml);
# - linked with lld, the functions a start runs laid out first and
#   together (cli/hot-functions.txt, through cli/build.rs), so that a
#   start faults in a few pages of code instead of most of the binary. If
#   lld is missing (Debian's package lld), the binary is linked without
#   that order and this says so; SAFEROOT_DIST_ORDER=0 leaves it out.
#
# Needs the Rust standard library for the musl target
# (`rustup target add x86_64-unknown-linux-musl`) and musl's C compiler
# wrapper for the bundled zstd sources (`musl-gcc`, Debian's musl-tools).
#
# SAFEROOT_DIST_LIBC=gnu builds the same binary statically against glibc
# instead (the build shipped before; needs glibc's static archives,
# libc6-dev on Debian), with packed relative relocations (cli/build.rs).
# The build is `cargo build --profile dist -p saferoot-cli --target T`;
# with --target given, build scripts and procedural macros stay host
# builds. CARGO_TARGET_DIR is honoured; the binary is
# $CARGO_TARGET_DIR/T/dist/saferoot. Every build of the command allocates
# through dlmalloc (cli/src/main.rs). docs/performance.md ("Linking", "The
# C library and the allocator") has what each choice saves.
set -euo pipefail

case ${1:-} in
    '') ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "dist.sh: unknown argument $1" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
host=$(rustc -vV | sed -n 's/^host: //p')
case $host in
    *-linux-gnu*) ;;
    *) echo "dist.sh: host $host is not a glibc Linux target" >&2; exit 2 ;;
esac
arch=${host%%-*}
case ${SAFEROOT_DIST_LIBC:-musl} in
    musl)
        target=$arch-unknown-linux-musl
        flags=""
        if ! command -v musl-gcc >/dev/null && ! command -v "$arch-linux-musl-gcc" >/dev/null; then
            echo "dist.sh: no musl C compiler (musl-gcc); on Debian: apt-get install musl-tools" >&2
            exit 2
        fi
        ;;
    gnu)
        target=$host
        flags="-C target-feature=+crt-static"
        ;;
    *) echo "dist.sh: SAFEROOT_DIST_LIBC must be musl or gnu" >&2; exit 2 ;;
esac
if [[ ! -d $(rustc --print sysroot)/lib/rustlib/$target/lib ]]; then
    echo "dist.sh: the Rust standard library for $target is not installed; rustup target add $target" >&2
    exit 2
fi
order=""
if [[ ${SAFEROOT_DIST_ORDER:-1} != 0 ]]; then
    if command -v ld.lld >/dev/null; then
        order=$here/hot-functions.txt
    else
        echo "dist.sh: no ld.lld (Debian: apt-get install lld); linking without the hot-function order" >&2
    fi
fi
var=$(echo "$target" | tr 'a-z-' 'A-Z_')
# The flags go to the target only (CARGO_TARGET_<TRIPLE>_RUSTFLAGS, which
# cargo does not apply to host artefacts when --target is given).
env "CARGO_TARGET_${var}_RUSTFLAGS=$flags" "SAFEROOT_LINK_ORDER=$order" \
    cargo build --manifest-path "$repo/Cargo.toml" --quiet --profile dist \
    -p saferoot-cli --target "$target" >&2
bin=${CARGO_TARGET_DIR:-$repo/target}/$target/dist/saferoot
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "dist.sh: $bin is not statically linked" >&2
    exit 1
fi
echo "$bin"
