#!/bin/bash
# Throughput of sandbox starts when many start at once: one bash process
# starts N sandboxes in the background (`&`, whole processes) and waits for
# all of them; the same N are then started one after the other. Reports
# sandboxes per second both ways, for saferoot with and without a pinned
# minimal mount namespace (--mount-ns) and for crun and runc when
# installed, in a private mount namespace holding MOUNTS extra mounts.
#
#   benches/startup-concurrent.sh [OUT_DIR]   (default: target/startup-bench)
#
# Environment:
#   N         sandboxes per batch (default 32)
#   ROUNDS    batches per tool and mount count (default 5)
#   MOUNTS    extra mounts in the namespace (default "100 5000")
#   SAFEROOT  the saferoot binary (default: the shipped build, made now
#             with cli/dist.sh)
#   TOOLS     default "saferoot saferoot+mountns saferoot-oci
#             saferoot-oci+mountns crun"; also runc, bwrap, saferoot-bwrap,
#             saferoot-bwrap+mountns (see benches/startup.sh for each)
#
# Printed per tool and mount count: the median over the rounds of the
# concurrent rate (N / wall time of the whole batch), of the sequential
# rate (N / wall time of N starts one by one), and their quotient, the
# speed-up from starting concurrently. On a machine with C idle cores it is
# at most about C; well below that, something serialises the starts (the
# kernel's namespace_sem, taken to copy a mount namespace and to detach
# the old root, is one such thing, and its hold time grows with the mount
# count). Every start must succeed: a failed one is reported with its
# stderr and the script exits 1. Written to OUT_DIR: concurrent.csv.
#
# Needs root, util-linux, awk; leaves nothing behind.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
me="$here/$(basename "$0")"
prog=startup-concurrent.sh
all_tools="saferoot saferoot+mountns saferoot-bwrap saferoot-bwrap+mountns bwrap saferoot-oci saferoot-oci+mountns crun runc"
default_tools="saferoot saferoot+mountns saferoot-oci saferoot-oci+mountns crun"
# shellcheck source=benches/startup-lib.sh
. "$here/startup-lib.sh"

if [ -z "${_SAFEROOT_STARTUP_WORK:-}" ]; then
    [ $# -le 1 ] || die "usage: $0 [OUT_DIR]"
    check_outer
    n=${N:-32}
    rounds=${ROUNDS:-5}
    mounts=${MOUNTS:-100 5000}
    case $n in '' | *[!0-9]* | 0) die "N must be a positive integer" ;; esac
    case $rounds in '' | *[!0-9]* | 0) die "ROUNDS must be a positive integer" ;; esac
    for c in $mounts; do
        case $c in '' | *[!0-9]*) die "MOUNTS must be non-negative integers, not '$c'" ;; esac
    done
    [ -n "$mounts" ] || die "MOUNTS is empty"
    out=${1:-$repo/target/startup-bench}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    find_saferoot "$repo"
    work=$(mktemp -d "${TMPDIR:-/tmp}/saferoot-startup-bench.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    status=0
    _SAFEROOT_STARTUP_WORK=$work _SAFEROOT_STARTUP_OUT=$out SAFEROOT=$saferoot \
        N=$n ROUNDS=$rounds MOUNTS=$mounts TOOLS=${TOOLS:-$default_tools} \
        unshare --mount --propagation private "$me" || status=$?
    exit "$status"
fi

out=$_SAFEROOT_STARTUP_OUT
saferoot=$SAFEROOT
status=0
setup_inner "$_SAFEROOT_STARTUP_WORK"
select_tools
make_pin
print_versions
say "batches:    $N sandboxes, $ROUNDS rounds per tool; extra mounts: $MOUNTS"
mkdir "$work/logs"

# batch TOOL MODE ID: starts N sandboxes of TOOL, all at once (MODE
# concurrent) or one by one (sequential); sets $elapsed (µs) and $failed.
batch() {
    local tool=$1 mode=$2 id=$3 i start pids=() rc
    failed=0
    now_us
    start=$now
    for ((i = 0; i < N; i++)); do
        if [ "$mode" = concurrent ]; then
            run_tool "$tool" "$id-$i" </dev/null >/dev/null 2>"$work/logs/$i" &
            pids+=($!)
        else
            run_tool "$tool" "$id-$i" </dev/null >/dev/null 2>"$work/logs/$i" || {
                rc=$?
                failed=$((failed + 1))
                say "$tool ($mode) start $i failed (exit $rc): $(head -c 300 "$work/logs/$i")"
            }
        fi
    done
    for ((i = 0; i < ${#pids[@]}; i++)); do
        wait "${pids[$i]}" || {
            rc=$?
            failed=$((failed + 1))
            say "$tool ($mode) start $i failed (exit $rc): $(head -c 300 "$work/logs/$i")"
        }
    done
    now_us
    elapsed=$((now - start))
}

echo "tool,mounts,round,mode,sandboxes,failed,us,per_s" >"$out/concurrent.csv"
batch_id=0
for count in $MOUNTS; do
    set_clutter "$count"
    say "== $count extra mounts ($total in the namespace)"
    active=()
    for t in "${tools[@]}"; do
        # An untimed start, so that caches are warm alike for every tool.
        if run_tool "$t" "$$-warm-$count" </dev/null >/dev/null 2>"$work/err"; then
            active+=("$t")
        else
            status=1
            say "$t failed its warm-up start at $count mounts: $(head -c 300 "$work/err")"
        fi
    done
    k=${#active[@]}
    for ((r = 0; r < ROUNDS; r++)); do
        for ((j = 0; j < k; j++)); do
            t=${active[$(((r + j) % k))]}
            for mode in concurrent sequential; do
                batch_id=$((batch_id + 1))
                batch "$t" "$mode" "$$-$batch_id"
                ((failed == 0)) || status=1
                awk -v t="$t" -v c="$count" -v r="$r" -v m="$mode" -v n="$N" -v f="$failed" -v us="$elapsed" \
                    'BEGIN { printf "%s,%s,%d,%s,%d,%d,%d,%.1f\n", t, c, r, m, n, f, us, (n - f) * 1e6 / us }' \
                    >>"$out/concurrent.csv"
            done
        done
    done
done

# Medians over the rounds.
awk -F, -v nproc="$(nproc 2>/dev/null || echo "?")" '
    NR == 1 { next }
    { key = $1 SUBSEP $2 SUBSEP $4; n[key]++; v[key, n[key]] = $8; fails[$1, $2] += $6
      if (!(($1) in seen)) { seen[$1] = 1; order[++nt] = $1 }
      if (!(($2) in cseen)) { cseen[$2] = 1; corder[++nc] = $2 } }
    function median(key,   m, i, j, x, s) {
        m = n[key]; if (m == 0) return ""
        for (i = 1; i <= m; i++) s[i] = v[key, i]
        for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
        return (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
    }
    END {
        printf "sandboxes per second (median of the rounds); %s CPUs online\n\n", nproc
        printf "%-24s %8s %12s %12s %9s %7s\n", "tool", "mounts", "concurrent", "sequential", "speed-up", "failed"
        for (b = 1; b <= nc; b++) for (a = 1; a <= nt; a++) {
            c = median(order[a] SUBSEP corder[b] SUBSEP "concurrent")
            s = median(order[a] SUBSEP corder[b] SUBSEP "sequential")
            if (c == "" && s == "") continue
            printf "%-24s %8s %12.1f %12.1f %9s %7d\n", order[a], corder[b], c, s,
                (s > 0) ? sprintf("%.2f", c / s) : "n/a", fails[order[a], corder[b]]
        }
    }' "$out/concurrent.csv" | tee "$out/concurrent.txt"

say "wrote $out/concurrent.csv and concurrent.txt"
exit "$status"
