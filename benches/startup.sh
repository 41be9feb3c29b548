#!/bin/bash
# Start-up cost of a sandbox as the host's mount table grows: saferoot with
# and without a pinned minimal mount namespace (`run --mount-ns`,
# `SAFEROOT_MOUNT_NS`), bubblewrap, crun and runc, each timed as whole
# processes in a private mount namespace that holds COUNTS extra mounts.
#
#   benches/startup.sh [OUT_DIR]        (default: target/startup-bench)
#
# Environment:
#   COUNTS    extra mounts in the namespace (default "100 1000 5000 20000")
#   RUNS      timed runs per tool and count (default 30)
#   PASSES    sweeps over the counts that share the runs (default 3)
#   SAFEROOT  the saferoot binary (default: the shipped build, made now
#             with cli/dist.sh, honouring CARGO_TARGET_DIR)
#   BWRAP     the bubblewrap to compare against (default: bwrap on PATH)
#   TOOLS     which tools to time (default: all; names as in the table below)
#
# The tools, each running /bin/true:
#   saferoot               saferoot run -- /bin/true (the embedded default sandbox)
#   saferoot+mountns       the same with --mount-ns PIN
#   saferoot-bwrap         saferoot as `bwrap`, on the flatpak-shaped line of
#                          benches/bwrap.sh (b)
#   saferoot-bwrap+mountns the same with SAFEROOT_MOUNT_NS=PIN
#   bwrap                  bubblewrap ($BWRAP) on that line
#   saferoot-oci           saferoot run --bundle B, B = crun's default bundle
#   saferoot-oci+mountns   the same with --mount-ns PIN
#   crun                   crun run on B (--cgroup-manager=disabled)
#   runc                   runc run on runc's default bundle (cgroupfs)
# A tool that is not installed is skipped with a note; one that fails its
# untimed warm-up run is reported (exit status and stderr) and skipped for
# that count, and the script then exits 1.
#
# Method: the script re-runs itself under `unshare -m --propagation
# private`. There it pins a minimal mount namespace once (untimed), then
# visits the counts PASSES times (forwards, backwards, forwards, ...). At
# each visit it makes exactly that many extra mounts below a scratch tmpfs
# (binds of one small tmpfs, made by doubling with `mount --rbind`: about
# 2 log2(N) mount(8) calls), runs every tool once untimed, and times
# RUNS/PASSES runs of every tool, one run of each in turn, the order
# rotated every round. So drift in the machine's load falls on all tools
# and all counts alike. A sample is the wall time of one process, from
# fork to exit, in µs (bash's EPOCHREALTIME).
#
# Output in OUT_DIR: samples.csv (every sample), startup.csv (per tool and
# count: runs, median and p90 in ms), startup.svg (median ms against
# mount count, both axes log scale), ratios.txt (what is printed at the
# end: per tool the median at the largest count over the median at the
# smallest, and saferoot over bwrap and over crun per count).
#
# Needs root, util-linux (unshare, mount), awk. Leaves nothing behind: every
# mount lives in the private namespace, the scratch directory is removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
me="$here/$(basename "$0")"
prog=startup.sh
all_tools="saferoot saferoot+mountns saferoot-bwrap saferoot-bwrap+mountns bwrap saferoot-oci saferoot-oci+mountns crun runc"
# shellcheck source=benches/startup-lib.sh
. "$here/startup-lib.sh"

# ---- the outer part: checks, binaries, the private namespace ---------------

if [ -z "${_SAFEROOT_STARTUP_WORK:-}" ]; then
    [ $# -le 1 ] || die "usage: $0 [OUT_DIR]"
    check_outer
    counts=${COUNTS:-100 1000 5000 20000}
    runs=${RUNS:-30}
    passes=${PASSES:-3}
    case $runs in '' | *[!0-9]* | 0) die "RUNS must be a positive integer" ;; esac
    case $passes in '' | *[!0-9]* | 0) die "PASSES must be a positive integer" ;; esac
    for c in $counts; do
        case $c in '' | *[!0-9]*) die "COUNTS must be non-negative integers, not '$c'" ;; esac
    done
    [ -n "$counts" ] || die "COUNTS is empty"
    out=${1:-$repo/target/startup-bench}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    find_saferoot "$repo"
    work=$(mktemp -d "${TMPDIR:-/tmp}/saferoot-startup-bench.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    status=0
    _SAFEROOT_STARTUP_WORK=$work _SAFEROOT_STARTUP_OUT=$out SAFEROOT=$saferoot \
        COUNTS=$counts RUNS=$runs PASSES=$passes TOOLS=${TOOLS:-$all_tools} \
        unshare --mount --propagation private "$me" || status=$?
    exit "$status"
fi

# ---- the inner part, in the private mount namespace ------------------------

out=$_SAFEROOT_STARTUP_OUT
saferoot=$SAFEROOT
runs=$RUNS
passes=$PASSES
counts=$COUNTS
status=0
setup_inner "$_SAFEROOT_STARTUP_WORK"
select_tools
make_pin
print_versions
say "counts:     $counts extra mounts; $runs runs per tool and count, in $passes passes"

seq_id=0
# time_one NAME: one start, its wall time in $elapsed (µs); fails with
# $failed_rc.
time_one() {
    local start
    seq_id=$((seq_id + 1))
    now_us
    start=$now
    run_tool "$1" "$$-$seq_id" </dev/null >"$work/out" 2>"$work/err" || { failed_rc=$?; return 1; }
    now_us
    elapsed=$((now - start))
}

echo "tool,mounts,host_mounts,run,us" >"$out/samples.csv"
# The counts are visited PASSES times, forwards then backwards, RUNS /
# PASSES runs each time, so that a change in the machine's load during the
# run falls on every count, not on one.
declare -A dead=() run_no=()
read -r -a order <<<"$counts"
per_pass=$(((runs + passes - 1) / passes))
for ((p = 0; p < passes; p++)); do
    this_pass=()
    for ((c = 0; c < ${#order[@]}; c++)); do
        if ((p % 2 == 0)); then this_pass+=("${order[$c]}"); else this_pass=("${order[$c]}" "${this_pass[@]}"); fi
    done
    for count in "${this_pass[@]}"; do
        # A fresh set of extra mounts (sets $total).
        set_clutter "$count"
        say "== pass $((p + 1))/$passes: $count extra mounts ($total in the namespace)"
        active=()
        for t in "${tools[@]}"; do
            [ -z "${dead[$t@$count]:-}" ] || continue
            # An untimed warm-up run; a tool that fails it is left out at
            # this count.
            if time_one "$t"; then
                active+=("$t")
            else
                status=1 dead[$t@$count]=1
                say "$t failed its warm-up run at $count mounts (exit $failed_rc): $(head -c 400 "$work/err")"
            fi
        done
        n=${#active[@]}
        for ((i = 0; i < per_pass; i++)); do
            for ((j = 0; j < n; j++)); do
                t=${active[$(((i + j) % n))]}
                [ -z "${dead[$t@$count]:-}" ] || continue
                k=${run_no[$t@$count]:-0}
                ((k < runs)) || continue
                if time_one "$t"; then
                    echo "$t,$count,$total,$k,$elapsed" >>"$out/samples.csv"
                    run_no[$t@$count]=$((k + 1))
                else
                    status=1 dead[$t@$count]=1
                    say "$t failed on run $k at $count mounts (exit $failed_rc): $(head -c 400 "$work/err")"
                fi
            done
        done
    done
done

# ---- the summary: CSV, ratios, chart ----------------------------------------

# Per tool and count: runs, median and p90 (nearest rank) in ms.
awk -F, '
    NR == 1 { next }
    { key = $1 SUBSEP $2; n[key]++; v[key, n[key]] = $5; hm[key] = $3
      if (!(($1) in seen)) { seen[$1] = 1; order[++nt] = $1 }
      if (!(($2) in cseen)) { cseen[$2] = 1; corder[++nc] = $2 } }
    END {
        print "tool,mounts,host_mounts,runs,median_ms,p90_ms,min_ms"
        for (a = 1; a <= nt; a++) for (b = 1; b <= nc; b++) {
            key = order[a] SUBSEP corder[b]; m = n[key]
            if (m == 0) continue
            for (i = 1; i <= m; i++) s[i] = v[key, i]
            for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
            med = (m % 2) ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
            r = int(0.9 * m); if (r < 0.9 * m) r++
            printf "%s,%s,%s,%d,%.2f,%.2f,%.2f\n", order[a], corder[b], hm[key], m, med / 1000, s[r] / 1000, s[1] / 1000
        }
    }' "$out/samples.csv" >"$out/startup.csv"

# The table and the ratios.
awk -F, '
    NR == 1 { next }
    { med[$1, $2] = $5; p90[$1, $2] = $6
      if (!(($1) in seen)) { seen[$1] = 1; order[++nt] = $1 }
      if (!(($2) in cseen)) { cseen[$2] = 1; corder[++nc] = $2 } }
    function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "n/a" : sprintf("%.2f", a / b) }
    END {
        printf "median / p90 in ms, whole process, by extra mounts in the namespace\n\n"
        printf "%-24s", "tool"
        for (b = 1; b <= nc; b++) printf " %17s", corder[b]
        printf "\n"
        for (a = 1; a <= nt; a++) {
            printf "%-24s", order[a]
            for (b = 1; b <= nc; b++) {
                k = order[a] SUBSEP corder[b]
                printf " %17s", (k in med) ? sprintf("%.2f / %.2f", med[k], p90[k]) : "n/a"
            }
            printf "\n"
        }
        lo = corder[1]; hi = corder[nc]
        printf "\ngrowth: median at %s mounts / median at %s mounts\n\n", hi, lo
        for (a = 1; a <= nt; a++)
            printf "%-24s %s\n", order[a], ratio(med[order[a], hi], med[order[a], lo])
        npairs = split("saferoot-bwrap/bwrap saferoot-bwrap+mountns/bwrap saferoot-oci/crun saferoot-oci+mountns/crun saferoot/crun saferoot+mountns/crun saferoot-oci/runc saferoot-oci+mountns/runc", pairs, " ")
        printf "\nsaferoot over the others (median / median; below 1: saferoot is faster)\n\n"
        printf "%-32s", "pair"
        for (b = 1; b <= nc; b++) printf " %8s", corder[b]
        printf "\n"
        for (p = 1; p <= npairs; p++) {
            split(pairs[p], ab, "/")
            if (!((ab[1]) in seen) || !((ab[2]) in seen)) continue
            printf "%-32s", pairs[p]
            for (b = 1; b <= nc; b++) printf " %8s", ratio(med[ab[1], corder[b]], med[ab[2], corder[b]])
            printf "\n"
        }
    }' "$out/startup.csv" | tee "$out/ratios.txt"

# The chart: median ms against the count, both axes on a log scale (the
# medians span three decades).
awk -F, '
    NR == 1 { next }
    { med[$1, $2] = $5
      if (!(($1) in seen)) { seen[$1] = 1; order[++nt] = $1 }
      if (!(($2) in cseen)) { cseen[$2] = 1; corder[++nc] = $2 }
      if (ymax == "" || $5 > ymax) ymax = $5
      if (ymin == "" || $5 < ymin) ymin = $5 }
    function lg(x) { return log(x < 1 ? 1 : x) / log(10) }
    function lgy(v) { return log(v < 0.01 ? 0.01 : v) / log(10) }
    function X(c) { return (hx == lx) ? L + W / 2 : L + (lg(c) - lx) / (hx - lx) * W }
    function Y(v) { return T + H - (lgy(v) - ly) / (hy - ly) * H }
    function floor_(x) { return (x == int(x) || x >= 0) ? int(x) : int(x) - 1 }
    END {
        L = 70; T = 40; W = 560; H = 340; R = 230
        lx = lg(corder[1]); hx = lx
        for (b = 1; b <= nc; b++) { if (lg(corder[b]) < lx) lx = lg(corder[b]); if (lg(corder[b]) > hx) hx = lg(corder[b]) }
        # Whole decades around the medians.
        ly = floor_(lgy(ymin)); hy = -floor_(-lgy(ymax)); if (hy <= ly) hy = ly + 1
        split("#1f77b4 #1f77b4 #d62728 #d62728 #2ca02c #9467bd #9467bd #ff7f0e #8c564b", col, " ")
        split("saferoot saferoot+mountns saferoot-bwrap saferoot-bwrap+mountns bwrap saferoot-oci saferoot-oci+mountns crun runc", known, " ")
        for (i = 1; i <= 9; i++) colour[known[i]] = col[i]
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n", L + W + R, T + H + 60, L + W + R, T + H + 60
        printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        printf "<text x=\"%d\" y=\"22\" font-size=\"14\">Sandbox start-up: median wall time of a whole process, by mounts in the namespace</text>\n", L
        for (d = ly; d <= hy; d++) for (m = 1; m <= 5; m += (m == 1 ? 1 : 3)) {
            v = m * 10 ^ d
            if (lgy(v) > hy + 1e-9) continue
            y = Y(v)
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n", L, y, L + W, y, m == 1 ? "#bbb" : "#eee"
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6, y + 4, v
        }
        for (b = 1; b <= nc; b++) {
            x = X(corder[b])
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, T, x, T + H
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, T + H + 18, corder[b]
        }
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T + H, L + W, T + H
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", L, T, L, T + H
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">extra mounts in the mount namespace (log scale)</text>\n", L + W / 2, T + H + 40
        printf "<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\">median ms (log scale)</text>\n", T + H / 2
        for (a = 1; a <= nt; a++) {
            t = order[a]; c = (t in colour) ? colour[t] : "black"
            dash = (t ~ /\+mountns$/) ? " stroke-dasharray=\"6 4\"" : ""
            pts = ""
            for (b = 1; b <= nc; b++) if ((t, corder[b]) in med) pts = pts sprintf("%.1f,%.1f ", X(corder[b]), Y(med[t, corder[b]]))
            printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"%s\"/>\n", c, dash, pts
            for (b = 1; b <= nc; b++) if ((t, corder[b]) in med)
                printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", X(corder[b]), Y(med[t, corder[b]]), c
            ly2 = T + 10 + (a - 1) * 20
            printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", L + W + 15, ly2, L + W + 45, ly2, c, dash
            printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + W + 52, ly2 + 4, t
        }
        printf "</svg>\n"
    }' "$out/startup.csv" >"$out/startup.svg"

say "wrote $out/startup.csv, samples.csv, ratios.txt and startup.svg"
exit "$status"
