#!/bin/bash
# Builds the saferoot command as it is meant to be shipped and prints the
# path of the binary on stdout:
#
#   cli/dist.sh
#
# - statically linked against glibc: no dynamic loader, no shared
#   libraries to map and bind at each start;
# - still position-independent (static-pie), so the image is placed at a
#   random address;
# - packed relative relocations (cli/build.rs), link-time optimisation and
#   one codegen unit (the `dist` profile in Cargo.toml).
#
# The build is `cargo build --profile dist -p saferoot-cli --target HOST`,
# with the static flag given for that target only (through
# CARGO_TARGET_<TRIPLE>_RUSTFLAGS, which cargo does not apply to host
# artefacts when --target is given), so build scripts and procedural
# macros, which cannot be static, are built as usual. CARGO_TARGET_DIR is
# honoured; the binary is $CARGO_TARGET_DIR/HOST/dist/saferoot. Needs the C
# library's static archives (libc6-dev on Debian). docs/performance.md
# ("Linking") has what each of these saves.
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
var=$(echo "$host" | tr 'a-z-' 'A-Z_')
env "CARGO_TARGET_${var}_RUSTFLAGS=-C target-feature=+crt-static" \
    cargo build --manifest-path "$repo/Cargo.toml" --quiet --profile dist \
    -p saferoot-cli --target "$host" >&2
bin=${CARGO_TARGET_DIR:-$repo/target}/$host/dist/saferoot
if ldd "$bin" 2>&1 | grep -q '=>'; then
    echo "dist.sh: $bin is not statically linked" >&2
    exit 1
fi
echo "$bin"
