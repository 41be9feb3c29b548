#!/bin/sh
# Extraction speed: saferoot extract against GNU tar -xp, on a real tree
# (default /usr/share), uncompressed and gzip. The two alternate (which one
# goes first alternates too), every run starts after `sync` into an empty
# directory, and the medians are reported: wall time, and user+system CPU
# time (children included, so GNU tar's gzip counts). Lower is better; the
# goal is a wall ratio saferoot/GNU tar <= 1.0.
#
#   benches/archive.sh [SOURCE_DIR] [WORK_DIR] [ROUNDS]
#
# Needs root (same-owner extraction), GNU time (/usr/bin/time), a release
# build (cargo build --release -p saferoot-cli; the binary is taken from
# $SAFEROOT, else $CARGO_TARGET_DIR/release, else target/release) and room
# in WORK_DIR for the archives and one extracted copy. After the runs, the
# last two trees are compared (type, mode, owner, link count, size, mtime, link target of
# every entry) and any difference is printed. With SAFEROOT_BASE set to
# another saferoot binary (an older build, say), it runs as a third
# contender ("base"), in the same rotation.
#
# PAUSE=SECONDS waits that long (after deleting the previous tree and
# `sync`) before each run. On ext4 it should be over 60: the inode
# allocator skips inodes freed in the last minute (longer while their
# inode table block is dirty), looking each one up, so a run that follows
# the deletion of a 64k-entry tree spends most of its time in
# recently_deleted() (seen with perf: 10x the system time of a run on a
# quiet file system), whichever tool it is. FRESH=1 avoids that instead:
# every run extracts into a new directory and the trees are only removed
# after the last round of each archive kind, and each kind starts after a
# five-minute pause (WORK_DIR needs room for 3 x ROUNDS trees).
set -eu
src=${1:-/usr/share}
work=${2:-$(pwd)/target/archive-bench}
rounds=${3:-5}
bin=${SAFEROOT:-${CARGO_TARGET_DIR:-$(dirname "$0")/../target}/release/saferoot}
[ -x "$bin" ] || { echo "no saferoot binary at $bin" >&2; exit 2; }
mkdir -p "$work"
tar -C "$src" -cf "$work/a.tar" . 2>/dev/null || true
gzip -1 -c "$work/a.tar" > "$work/a.tar.gz"
echo "archive: $(tar -tf "$work/a.tar" | wc -l) entries, $(du -m "$work/a.tar" | cut -f1) MiB" \
    "($(du -m "$work/a.tar.gz" | cut -f1) MiB gzip -1); $rounds rounds; $(nproc) CPUs;" \
    "pause ${PAUSE:-0} s; fresh ${FRESH:-0}; $(findmnt -no FSTYPE -T "$work");" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"

# run WHO KIND: one extraction into $work/out; appends "wall cpu" to
# $work/WHO.KIND
n=0
run() {
    if [ "${FRESH:-0}" = 1 ]; then
        n=$((n + 1))
        [ ! -e "$work/out" ] || mv "$work/out" "$work/old.$n"
    else
        rm -rf "$work/out"
    fi
    mkdir "$work/out"
    sync
    sleep "${PAUSE:-0}"
    case $1 in
    gnu) /usr/bin/time -f "%e %U %S" -o "$work/t" tar -C "$work/out" -xpf "$work/$2" ;;
    ours) /usr/bin/time -f "%e %U %S" -o "$work/t" "$bin" extract --into "$work/out" "$work/$2" > /dev/null ;;
    base) /usr/bin/time -f "%e %U %S" -o "$work/t" "$SAFEROOT_BASE" extract --into "$work/out" "$work/$2" > /dev/null ;;
    esac
    awk '{ printf "%.2f %.2f\n", $1, $2 + $3 }' "$work/t" >> "$work/$1.$2"
}

# median COLUMN FILE
median() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

for kind in a.tar a.tar.gz; do
    # Past the five minutes ext4 may keep freed inodes unused (while their
    # inode table block is dirty): a quiet file system to start from.
    if [ "${FRESH:-0}" = 1 ]; then sync; sleep 310; fi
    rm -f "$work/gnu.$kind" "$work/ours.$kind" "$work/base.$kind"
    i=0
    while [ "$i" -lt "$rounds" ]; do
        if [ -n "${SAFEROOT_BASE:-}" ]; then
            case $((i % 3)) in 0) order="gnu ours base" ;; 1) order="ours base gnu" ;; *) order="base gnu ours" ;; esac
        elif [ $((i % 2)) -eq 0 ]; then order="gnu ours"; else order="ours gnu"; fi
        for who in $order; do
            run "$who" "$kind"
            if [ "$i" -eq $((rounds - 1)) ]; then
                (cd "$work/out" && find . -printf '%p %y %m %U %G %n %s %T@ %l\n' | sort) > "$work/$who.list"
            fi
        done
        i=$((i + 1))
    done
    gw=$(median 1 "$work/gnu.$kind"); gc=$(median 2 "$work/gnu.$kind")
    ow=$(median 1 "$work/ours.$kind"); oc=$(median 2 "$work/ours.$kind")
    echo "$kind: GNU tar wall $gw s (cpu $gc s), saferoot wall $ow s (cpu $oc s);" \
        "wall ratio $(echo "scale=2; $ow / $gw" | bc)"
    echo "  GNU tar walls: $(cut -d' ' -f1 "$work/gnu.$kind" | tr '\n' ' ')"
    echo "  saferoot walls: $(cut -d' ' -f1 "$work/ours.$kind" | tr '\n' ' ')"
    if [ -n "${SAFEROOT_BASE:-}" ]; then
        bw=$(median 1 "$work/base.$kind"); bc_=$(median 2 "$work/base.$kind")
        echo "  base wall $bw s (cpu $bc_ s), wall ratio base/GNU tar $(echo "scale=2; $bw / $gw" | bc);" \
            "walls: $(cut -d' ' -f1 "$work/base.$kind" | tr '\n' ' ')"
    fi
    # The trees of the last round, compared (directory sizes differ with
    # the order entries were made in, so they are left out).
    sed -i 's/^\(.* d [0-7]* [0-9]* [0-9]* [0-9]*\) [0-9]* /\1 - /' "$work/gnu.list" "$work/ours.list"
    if ! diff "$work/gnu.list" "$work/ours.list" > "$work/diff"; then
        echo "  TREES DIFFER:"; head -20 "$work/diff"
    fi
    rm -rf "$work"/old.* "$work/out"
done
rm -rf "$work"
