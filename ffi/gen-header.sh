#!/bin/sh
# Regenerates include/saferoot.h from the ffi crate with cbindgen.
#
#   ffi/gen-header.sh           write include/saferoot.h
#   ffi/gen-header.sh --check   fail (exit 1, with a diff) if the committed
#                               header differs from what the sources give,
#                               or does not compile as strict C99 and C++
#
# The cbindgen version is pinned: a different version may format the header
# differently, and the check would then fail for no change of the API. When
# the pinned version is not on PATH it is installed with
# `cargo install --locked` (from crates.io) into $CBINDGEN_ROOT (default:
# target-cbindgen/ in the repository, which git ignores).
set -eu

CBINDGEN_VERSION=0.29.4

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
header="$repo/include/saferoot.h"
mode=write
case "${1:-}" in
    --check) mode=check ;;
    "") ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

cbindgen_bin() {
    if command -v cbindgen >/dev/null 2>&1 &&
        [ "$(cbindgen --version)" = "cbindgen $CBINDGEN_VERSION" ]; then
        command -v cbindgen
        return
    fi
    root="${CBINDGEN_ROOT:-$repo/target-cbindgen}"
    if [ ! -x "$root/bin/cbindgen" ] ||
        [ "$("$root/bin/cbindgen" --version)" != "cbindgen $CBINDGEN_VERSION" ]; then
        echo "installing cbindgen $CBINDGEN_VERSION into $root" >&2
        cargo install --quiet --locked --root "$root" cbindgen --version "=$CBINDGEN_VERSION" >&2
    fi
    echo "$root/bin/cbindgen"
}

cbindgen=$(cbindgen_bin)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$here" && "$cbindgen" --quiet --config cbindgen.toml --crate saferoot-ffi \
    --output "$tmp/saferoot.h" .)

# The header must stand alone as strict C99 (gcc 12, cgo) and as C++.
compile_check() {
    printf '#include "saferoot.h"\nint main(void) { return saferoot_version() == 0; }\n' >"$tmp/c.c"
    gcc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$1" "$tmp/c.c"
    if command -v g++ >/dev/null 2>&1; then
        printf '#include "saferoot.h"\nint main() { return saferoot_version() == 0; }\n' >"$tmp/cc.cc"
        g++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I "$1" "$tmp/cc.cc"
    fi
}

if [ "$mode" = check ]; then
    if ! diff -u "$header" "$tmp/saferoot.h"; then
        echo "include/saferoot.h is out of date: run ffi/gen-header.sh and commit it" >&2
        exit 1
    fi
    compile_check "$repo/include"
    echo "include/saferoot.h is up to date (cbindgen $CBINDGEN_VERSION) and compiles as C99"
else
    compile_check "$tmp"
    mkdir -p "$repo/include"
    cp "$tmp/saferoot.h" "$header"
    echo "wrote $header (cbindgen $CBINDGEN_VERSION)"
fi
