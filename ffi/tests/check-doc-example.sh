#!/bin/sh
# Checks that a document shows an example file verbatim, so the two cannot
# drift apart: the fenced code block right after the line
# `<!-- verbatim: PATH -->` in DOC must equal the file PATH (relative to the
# repository root).
#
# Usage: ffi/tests/check-doc-example.sh DOC PATH
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
doc=$1
path=$2

block=$(mktemp)
trap 'rm -f "$block"' EXIT
awk -v marker="<!-- verbatim: $path -->" '
    state == 2 { if ($0 ~ /^```/) { exit } print; next }
    state == 1 { state = 2; next }
    $0 == marker { state = 1 }
' "$doc" >"$block"
if [ ! -s "$block" ]; then
    echo "$doc has no block marked <!-- verbatim: $path -->" >&2
    exit 1
fi
if ! diff -u "$repo/$path" "$block"; then
    echo "$doc does not show $path verbatim (the diff above); copy the file into the doc" >&2
    exit 1
fi
echo "$doc shows $path verbatim"
