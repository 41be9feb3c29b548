#!/bin/bash
# Start-up of the default OCI bundle: `saferoot run --bundle B -- /bin/true`
# against `crun run` on the same bundle, whole processes, alternating.
#
#   benches/oci.sh [SAFEROOT_BINARY...]
#
# Without an argument it builds saferoot as shipped (cli/dist.sh;
# CARGO_TARGET_DIR is honoured). With several binaries (say
# the build before and after a change) each is timed in the same rotation,
# so that drift in the machine's load falls on all of them alike.
#
# Environment:
#   RUNS   timed runs per tool (default 100)
#
# B is crun's default bundle as benches/startup.sh makes it (`crun spec`,
# /bin/true, no terminal, the host's /usr bound read-only into a rootfs of
# merged-usr symlinks); crun runs with --cgroup-manager=disabled (saferoot
# makes no cgroup either). One untimed run of each tool first, then RUNS
# rounds of one run of each tool, the order rotated every round. Prints
# the median and the 90th percentile (nearest rank) in ms per tool and the
# ratio of its median to crun's (below 1: faster than crun). Without crun it
# says so and exits 0. Needs root.
set -euo pipefail

# shellcheck disable=SC2034 # read by startup-lib.sh
prog=oci.sh
# shellcheck disable=SC2034
all_tools=""
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=benches/startup-lib.sh
. "$here/startup-lib.sh"

runs=${RUNS:-100}
case $runs in '' | *[!0-9]* | 0) die "RUNS must be a positive integer" ;; esac
[ "$(id -u)" = 0 ] || die "needs root"
if ! command -v crun >/dev/null; then
    say "no crun on PATH; nothing to compare against, skipping."
    exit 0
fi
# Both tools run in a private mount namespace of the script's own, where
# crun's cgroup quirk can be worked around without touching the host.
if [ -z "${SAFEROOT_OCI_BENCH_INNER:-}" ]; then
    command -v unshare >/dev/null || die "needs unshare(1) from util-linux"
    SAFEROOT_OCI_BENCH_INNER=1 exec unshare -m --propagation private "$0" "$@"
fi
# crun 1.8 refuses to start on a host whose cgroup2 hierarchy, mounted
# beside cgroup v1 ones, has controllers ("hybrid mode"): as in
# benches/startup.sh, that mount is detached in this namespace only.
if [ -d /sys/fs/cgroup/cpu ] &&
    awk '$5 == "/sys/fs/cgroup/unified" { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    umount -l /sys/fs/cgroup/unified
    say "note: /sys/fs/cgroup/unified (cgroup2 beside cgroup v1) detached in the bench namespace, for crun"
fi

bins=()
if [ $# -eq 0 ]; then
    find_saferoot "$repo"
    bins=("$saferoot")
else
    for b in "$@"; do
        [ -x "$b" ] || die "$b is not an executable"
        bins+=("$(cd "$(dirname "$b")" && pwd)/$(basename "$b")")
    done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/saferoot-oci-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
make_bundle crun "$work/bundle" || die "could not make crun's default bundle"
mkdir "$work/state" "$work/samples"

# Tool k: 0..n-1 the saferoot binaries, n crun.
n=${#bins[@]}
run() {
    if (($1 < n)); then
        "${bins[$1]}" run --bundle "$work/bundle" -- /bin/true
    else
        crun --cgroup-manager=disabled --root "$work/state" run \
            --bundle "$work/bundle" "oci-bench-$2"
    fi
}
label() {
    if (($1 < n)); then echo "${bins[$1]}"; else echo crun; fi
}

status=0
for ((k = 0; k <= n; k++)); do
    : >"$work/samples/$k"
    if ! run "$k" warm </dev/null >/dev/null 2>"$work/err"; then
        say "$(label "$k") failed its warm-up run: $(head -c 400 "$work/err")"
        exit 1
    fi
done
for ((i = 0; i < runs; i++)); do
    for ((j = 0; j <= n; j++)); do
        k=$(((i + j) % (n + 1)))
        now_us
        start=$now
        if ! run "$k" "$i" </dev/null >/dev/null 2>"$work/err"; then
            say "$(label "$k") failed on run $i: $(head -c 400 "$work/err")"
            status=1
            continue
        fi
        now_us
        echo $((now - start)) >>"$work/samples/$k"
    done
done

read -r crun_med _ < <(stats "$work/samples/$n")
echo "bundle: crun's default (crun spec), /bin/true; $runs runs per tool, alternating;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-60s %9s %9s %7s\n' tool "med ms" "p90 ms" ratio
for ((k = 0; k <= n; k++)); do
    read -r med p90 < <(stats "$work/samples/$k")
    ratio=$(awk -v a="$med" -v b="$crun_med" 'BEGIN { if (b > 0 && a != "n/a") printf "%.2f", a / b; else print "n/a" }')
    printf '%-60s %9s %9s %7s\n' "$(label "$k")" "$med" "$p90" "$ratio"
done
exit $status
