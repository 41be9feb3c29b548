#!/bin/sh
# Extraction speed: saferoot extract against GNU tar -xp, alternately, on a
# real tree (default /usr/share), uncompressed and gzip. Prints wall times
# and the ratio saferoot/GNU tar (lower is better; the goal is <= 1.0).
#
#   benches/archive.sh [SOURCE_DIR] [WORK_DIR] [ROUNDS]
#
# Needs root (same-owner extraction), a release build
# (cargo build --release -p saferoot-cli) and room in WORK_DIR for the
# archives and two extracted copies.
set -eu
src=${1:-/usr/share}
work=${2:-$(pwd)/target/archive-bench}
rounds=${3:-3}
bin=$(dirname "$0")/../target/release/saferoot
mkdir -p "$work"
tar -C "$src" -cf "$work/a.tar" . 2>/dev/null || true
gzip -1 -c "$work/a.tar" > "$work/a.tar.gz"
now() { date +%s.%N; }
for kind in a.tar a.tar.gz; do
    t_gnu=0; t_ours=0
    i=0
    while [ "$i" -lt "$rounds" ]; do
        for who in gnu ours; do
            rm -rf "$work/out"; mkdir "$work/out"; sync
            s=$(now)
            if [ "$who" = gnu ]; then
                tar -C "$work/out" -xpf "$work/$kind"
            else
                "$bin" extract --into "$work/out" "$work/$kind" > /dev/null
            fi
            e=$(now)
            d=$(echo "$e - $s" | bc)
            if [ "$who" = gnu ]; then t_gnu=$(echo "$t_gnu + $d" | bc); else t_ours=$(echo "$t_ours + $d" | bc); fi
        done
        i=$((i + 1))
    done
    echo "$kind: GNU tar ${t_gnu}s, saferoot ${t_ours}s over $rounds rounds, ratio $(echo "scale=2; $t_ours / $t_gnu" | bc)"
done
rm -rf "$work"
