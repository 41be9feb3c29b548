#!/bin/sh
# Builds libsaferoot in release mode and installs it under a prefix:
#
#   PREFIX/lib/libsaferoot.so.VERSION     the shared library (soname libsaferoot.so.0)
#   PREFIX/lib/libsaferoot.so.0        -> libsaferoot.so.VERSION
#   PREFIX/lib/libsaferoot.so          -> libsaferoot.so.0   (for -lsaferoot)
#   PREFIX/lib/libsaferoot.a              the static library
#   PREFIX/include/saferoot.h             the header
#   PREFIX/lib/pkgconfig/saferoot.pc      for pkg-config and `#cgo pkg-config: saferoot`
#
# Usage: ffi/install.sh PREFIX
# Environment: DESTDIR (staging root, prepended to every installed path but
# not written into saferoot.pc), LIBDIR (default PREFIX/lib),
# CARGO_TARGET_DIR (cargo's, default target/ in the repository), CARGO
# (default cargo), NO_BUILD=1 (install what is already built).
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
prefix=$1
case "$prefix" in
    /*) ;;
    *) prefix=$(mkdir -p "$prefix" && cd "$prefix" && pwd) ;;
esac
libdir=${LIBDIR:-$prefix/lib}
includedir=$prefix/include
destdir=${DESTDIR:-}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
target=${CARGO_TARGET_DIR:-$repo/target}
cargo=${CARGO:-cargo}

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$here/Cargo.toml" | head -n 1)
abi=$(sed -n 's/^#define SAFEROOT_ABI_VERSION \([0-9]*\)$/\1/p' "$repo/include/saferoot.h")
if [ -z "$version" ] || [ -z "$abi" ]; then
    echo "$0: cannot read the version from ffi/Cargo.toml or include/saferoot.h" >&2
    exit 1
fi

if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$repo" && CARGO_TARGET_DIR="$target" "$cargo" build --release -p saferoot-ffi)
fi
# The crate's Rust library is saferoot_ffi (the name saferoot is the Rust
# library's); the C library is installed as libsaferoot.
so="$target/release/libsaferoot_ffi.so"
a="$target/release/libsaferoot_ffi.a"
for f in "$so" "$a"; do
    [ -f "$f" ] || { echo "$0: $f was not built" >&2; exit 1; }
done

# The shared library is linked from the static one with our version script
# (ffi/saferoot.map: every saferoot_* symbol at SAFEROOT_0.1, nothing else
# exported). rustc hands the linker a version script of its own for a
# cdylib, and the linker uses the first one only, so a script given from
# build.rs would be ignored. The libraries after the archive are what
# `cargo rustc -p saferoot-ffi --release -- --print native-static-libs`
# reports for this target.
cc=${CC:-cc}
so_versioned="$target/release/libsaferoot.so.$version"
"$cc" -shared -o "$so_versioned" \
    -Wl,--whole-archive "$a" -Wl,--no-whole-archive \
    -Wl,--version-script="$here/saferoot.map" -Wl,-soname,"libsaferoot.so.$abi" \
    -Wl,--gc-sections -Wl,-z,relro,-z,now \
    -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
so=$so_versioned

install -d "$destdir$libdir/pkgconfig" "$destdir$includedir"
install -m 0755 "$so" "$destdir$libdir/libsaferoot.so.$version"
ln -sfn "libsaferoot.so.$version" "$destdir$libdir/libsaferoot.so.$abi"
ln -sfn "libsaferoot.so.$abi" "$destdir$libdir/libsaferoot.so"
install -m 0644 "$a" "$destdir$libdir/libsaferoot.a"
install -m 0644 "$repo/include/saferoot.h" "$destdir$includedir/saferoot.h"

# Libs.private: what a static link of libsaferoot.a needs besides libc, as
# rustc reports it (`--print native-static-libs`) for this target.
cat >"$destdir$libdir/pkgconfig/saferoot.pc" <<PC
prefix=$prefix
libdir=$libdir
includedir=$includedir

Name: saferoot
Description: Race-free container root filesystems on the new Linux mount API
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsaferoot
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC

echo "installed libsaferoot $version (ABI $abi) under $destdir$prefix"
