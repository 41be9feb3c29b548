#!/bin/bash
# Start-up cost of a sandbox: saferoot run under the name `bwrap` (its
# bubblewrap personality) against the bubblewrap found on PATH, on the same
# command lines. Each run is a whole process, from fork to exit of the
# sandboxed `true`; the two tools alternate (ABBA order), RUNS times each.
#
#   benches/bwrap.sh [SAFEROOT_BINARY]
#
# Without an argument it builds saferoot as shipped (cli/dist.sh: static,
# LTO; CARGO_TARGET_DIR is honoured) and uses that binary.
#
# Environment:
#   RUNS    runs per tool and command line (default 50)
#   RUNS_C  runs of the many-binds line (default 10: one bubblewrap 0.11
#           run of it takes seconds, 50 would take minutes)
#   BINDS   number of binds in the "many binds" line (default 2000)
#   CASES   which command lines, any of "a b c" (default all three)
#   BWRAP   the bubblewrap to compare against (default: bwrap on PATH)
#
# Prints, per command line, median and p90 wall time in ms for each tool
# and the ratio saferoot/bubblewrap of the medians (below 1: saferoot is
# faster). With no bubblewrap it says so and exits 0. Needs what both tools
# need to make a sandbox: root, or unprivileged user namespaces.
set -euo pipefail

runs=${RUNS:-50}
runs_c=${RUNS_C:-10}
binds=${BINDS:-2000}
cases=${CASES:-a b c}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# now_us and stats
# shellcheck disable=SC2034 # read by startup-lib.sh
prog=bwrap.sh
# shellcheck source=benches/startup-lib.sh
. "$here/startup-lib.sh"

case $runs in '' | *[!0-9]* | 0) echo "bwrap.sh: RUNS must be a positive integer" >&2; exit 2 ;; esac
for c in $cases; do
    case $c in a | b | c) ;; *) echo "bwrap.sh: unknown case $c in CASES (use a, b or c)" >&2; exit 2 ;; esac
done
case $runs_c in '' | *[!0-9]* | 0) echo "bwrap.sh: RUNS_C must be a positive integer" >&2; exit 2 ;; esac
case $binds in '' | *[!0-9]* | 0) echo "bwrap.sh: BINDS must be a positive integer" >&2; exit 2 ;; esac

# The bubblewrap to compare against: looked up before our own `bwrap`
# symlink exists, and refused if it is saferoot itself.
real_bwrap=${BWRAP:-$(command -v bwrap || true)}
if [ -z "$real_bwrap" ] || [ ! -x "$real_bwrap" ]; then
    echo "bwrap.sh: no bubblewrap (bwrap) on PATH; nothing to compare against, skipping."
    echo "bwrap.sh: install it (apt-get install bubblewrap) or point BWRAP at one."
    exit 0
fi

if [ $# -ge 1 ]; then
    saferoot=$1
else
    echo "bwrap.sh: building saferoot (cli/dist.sh)..." >&2
    saferoot=$("$repo/cli/dist.sh")
fi
if [ ! -x "$saferoot" ]; then
    echo "bwrap.sh: $saferoot is not an executable" >&2
    exit 2
fi
saferoot=$(cd "$(dirname "$saferoot")" && pwd)/$(basename "$saferoot")
if [ "$(readlink -f "$real_bwrap")" = "$(readlink -f "$saferoot")" ]; then
    echo "bwrap.sh: $real_bwrap is saferoot itself; nothing to compare against, skipping."
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/saferoot-bwrap-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
ln -s "$saferoot" "$work/bwrap"
ours=$work/bwrap

# The command lines. (a) the smallest useful sandbox; (b) the shape of a
# flatpak-style sandbox; (c) BINDS read-only binds on fresh mount points.
base=(--ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64
    --symlink usr/bin /bin --symlink usr/sbin /sbin)
args_a=(--ro-bind / / true)
args_b=("${base[@]}" --proc /proc --dev /dev --tmpfs /tmp --unshare-all
    --die-with-parent --new-session true)
args_c=("${base[@]}")
for ((i = 1; i <= binds; i++)); do
    args_c+=(--ro-bind /usr/share "/x/$i")
done
args_c+=(true)
title_a="--ro-bind / / true"
title_b="flatpak-shaped: /usr, symlinks, proc, dev, tmpfs, unshare-all"
title_c="$binds x --ro-bind /usr/share /x/N"

# One timed run; sets $elapsed (µs), or $failed_rc and fails.
time_one() {
    local start
    now_us; start=$now
    "$@" </dev/null >/dev/null 2>"$work/err" || { failed_rc=$?; return 1; }
    now_us
    elapsed=$((now - start))
}


echo "saferoot:   $saferoot (as $ours)"
echo "bubblewrap: $real_bwrap ($("$real_bwrap" --version 2>/dev/null || echo "version unknown"))"
echo "runs:       $runs per tool and command line ($runs_c for (c)), alternating; whole-process wall time in ms"
echo
printf '%-4s %-64s %10s %10s %10s %10s %7s\n' "" "command line" "ours med" "ours p90" "bwrap med" "bwrap p90" "ratio"

status=0
for c in $cases; do
    case $c in
        a) args=("${args_a[@]}"); title=$title_a; n=$runs ;;
        b) args=("${args_b[@]}"); title=$title_b; n=$runs ;;
        c) args=("${args_c[@]}"); title=$title_c; n=$runs_c ;;
    esac
    : >"$work/ours"
    : >"$work/theirs"
    # A warm-up run of each tool; a tool that cannot run the line is
    # reported and left out of this line's timing.
    ok_ours=1 ok_theirs=1
    if ! time_one "$ours" "${args[@]}"; then
        ok_ours=0 status=1
        echo "($c) saferoot failed (exit $failed_rc): $(head -c 400 "$work/err")" >&2
    fi
    if ! time_one "$real_bwrap" "${args[@]}"; then
        ok_theirs=0 status=1
        echo "($c) bubblewrap failed (exit $failed_rc): $(head -c 400 "$work/err")" >&2
    fi
    for ((i = 0; i < n; i++)); do
        if ((i % 2 == 0)); then order="ours theirs"; else order="theirs ours"; fi
        for who in $order; do
            if [ "$who" = ours ] && [ $ok_ours = 1 ]; then
                if time_one "$ours" "${args[@]}"; then
                    echo "$elapsed" >>"$work/ours"
                else
                    ok_ours=0 status=1
                    echo "($c) saferoot failed on run $i (exit $failed_rc): $(head -c 400 "$work/err")" >&2
                fi
            elif [ "$who" = theirs ] && [ $ok_theirs = 1 ]; then
                if time_one "$real_bwrap" "${args[@]}"; then
                    echo "$elapsed" >>"$work/theirs"
                else
                    ok_theirs=0 status=1
                    echo "($c) bubblewrap failed on run $i (exit $failed_rc): $(head -c 400 "$work/err")" >&2
                fi
            fi
        done
    done
    read -r om op < <(stats "$work/ours")
    read -r tm tp < <(stats "$work/theirs")
    ratio=$(awk -v o="$om" -v t="$tm" 'BEGIN { if (o == "n/a" || t == "n/a" || t == 0) print "n/a"; else printf "%.2f", o / t }')
    printf '%-4s %-64s %10s %10s %10s %10s %7s\n' "($c)" "$title" "$om" "$op" "$tm" "$tp" "$ratio"
done
exit $status
