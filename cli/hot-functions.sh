#!/bin/bash
# The functions of the saferoot command that a sandbox's start runs, for
# cli/dist.sh to lay out first and together (cli/build.rs links the shipped
# binary with lld and `--symbol-ordering-file=cli/hot-functions.txt`).
#
#   cli/hot-functions.sh               # build (cli/dist.sh), record, write the list
#   cli/hot-functions.sh BIN           # record BIN, a build of cli/dist.sh
#   cli/hot-functions.sh --check BIN   # prints "ok" when BIN has the list's layout, else why (status 1)
#
# Recording runs four kinds of start RUNS times each (default 300), each
# kind under its own `perf record` with CPU-clock samples (call chains
# included) and every user page fault: the default sandbox (`run --
# /bin/true`), crun's default bundle (from
# tests/fixtures/crun-spec-default.json, with /usr bound and /bin/true as
# its process, as benches/oci.sh times it), and lines (a) and (b) of
# benches/bwrap.sh through the bubblewrap personality. The list is every
# function of BIN that a sample or a fault names, as mangled symbol names,
# in three groups: those only the command's own process runs, those it
# and the processes it forks run, those only the forked ones run. Within
# a group, the functions only `run`'s two kinds reach and those only the
# bubblewrap lines reach lie on either side of those both reach (mirrored
# in the middle group, so that each family's functions in its own process
# are in one stretch), each in the order a start first reaches them (the
# median over the runs). Needs root and perf.
#
# A function missing from the list still runs, from wherever the linker
# put it; names the build no longer has are skipped. `--check` fails when
# fewer than three quarters of the listed names are in BIN (the list is
# out of date: record it again) or when they are not laid out together.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
list=$here/hot-functions.txt
prog=hot-functions.sh
# say, die, make_bundle and bwrap_args (line (b) of benches/bwrap.sh).
# shellcheck source=../benches/startup-lib.sh
source "$repo/benches/startup-lib.sh"

# check BIN: the listed names BIN has, and the span of text they cover.
check() {
    local bin=$1
    [ -x "$bin" ] || die "$bin is not an executable"
    nm -S -t d --defined-only "$bin" | awk -v list="$list" '
        BEGIN {
            while ((getline l < list) > 0) {
                sub(/#.*/, "", l)
                gsub(/[ \t]/, "", l)
                if (l != "") { want[l] = 1; listed++ }
            }
        }
        NF == 4 && ($3 == "t" || $3 == "T") && ($4 in want) && !($4 in seen) {
            seen[$4] = 1
            found++
            size += $2
            if (lo == "" || $1 < lo) lo = $1
            if ($1 + $2 > hi) hi = $1 + $2
        }
        END {
            if (listed == 0) { print "the list is empty"; exit 1 }
            if (found * 4 < listed * 3) {
                printf "%d of %d listed functions are in the binary: record the list again (cli/hot-functions.sh, as root, with perf)\n", found, listed
                exit 1
            }
            # Laid out together: the span is the functions themselves plus
            # alignment, not the whole text.
            if (hi - lo > size * 1.25 + 65536) {
                printf "the %d listed functions (%d KiB) are spread over %d KiB\n", found, size / 1024, (hi - lo) / 1024
                exit 1
            }
            print "ok"
        }'
}

if [[ ${1:-} == --check ]]; then
    [ $# -eq 2 ] || die "usage: $0 --check BIN"
    check "$2"
    exit
fi
case ${1:-} in -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac

[ "$(id -u)" = 0 ] || die "needs root (the starts make namespaces)"
command -v perf >/dev/null || die "needs perf (Debian: linux-perf)"
bin=${1:-}
if [ -z "$bin" ]; then
    say "building saferoot (cli/dist.sh)..."
    bin=$("$here/dist.sh")
fi
[ -x "$bin" ] || die "$bin is not an executable"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
runs=${RUNS:-300}
case $runs in '' | *[!0-9]* | 0) die "RUNS must be a positive integer" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/saferoot-hot.XXXXXX")
trap 'rm -rf "$work"' EXIT
ln -s "$bin" "$work/bwrap"
# crun's default bundle as benches/startup-lib.sh makes it, from the
# fixture of `crun spec` (no crun needed here).
fixture_spec() { cp "$repo/tests/fixtures/crun-spec-default.json" config.json; }
make_bundle fixture_spec "$work/bundle" || die "could not make the bundle"
# The four kinds of start, one letter each: d the default sandbox, o the
# bundle, a and b the bubblewrap lines.
cat >"$work/starts.sh" <<EOF
#!/bin/bash
for ((i = 0; i < $runs; i++)); do
    case \$1 in
        d) "$bin" run -- /bin/true ;;
        o) "$bin" run --bundle "$work/bundle" -- /bin/true ;;
        a) "$work/bwrap" --ro-bind / / true ;;
        b) "$work/bwrap" ${bwrap_args[*]} ;;
    esac
done >/dev/null 2>&1 </dev/null
EOF
chmod +x "$work/starts.sh"
for kind in d o a b; do
    say "recording $runs starts of kind $kind..."
    perf record -q -o "$work/perf.$kind" -g -F 40000 -e cpu-clock -e exceptions:page_fault_user \
        -e sched:sched_process_exec -e sched:sched_process_fork \
        -- "$work/starts.sh" "$kind" >/dev/null 2>&1 || die "perf record failed"
    # When each process of a start first reached each function: one line
    # "KIND ROLE NAME MICROSECONDS" per process and function, ROLE `main`
    # for the command's own process (from its exec) and `child` for every
    # process it forked (from the fork).
    perf script -i "$work/perf.$kind" --no-demangle -F pid,time,event,ip,sym,dso,trace 2>/dev/null |
        awk -v kind="$kind" -v dso="($bin)" -v bin="$bin" -v link="$work/bwrap" '
            match($0, /^ *[0-9]+ +[0-9.]+: +[a-z_:-]+:/) {
                pid = $1
                t = $2
                sub(/:$/, "", t)
                if ($3 == "sched:sched_process_exec:") {
                    delete start[pid]
                    if ($4 == "filename=" bin || $4 == "filename=" link) {
                        start[pid] = t
                        role[pid] = "main"
                    }
                } else if ($3 == "sched:sched_process_fork:") {
                    for (i = 4; i <= NF; i++) {
                        if ($i ~ /^pid=/) parent = substr($i, 5)
                        if ($i ~ /^child_pid=/) child = substr($i, 11)
                    }
                    if (parent in start) {
                        start[child] = t
                        role[child] = "child"
                    }
                }
                next
            }
            NF == 3 && $3 == dso && $2 != "[unknown]" && (pid in start) && !((pid, $2) in seen) {
                seen[pid, $2] = 1
                printf "%s %s %s %d\n", kind, role[pid], $2, (t - start[pid]) * 1000000
            }'
done >"$work/first-use"
# Per function: the roles and kinds that reach it and the median time a
# process first does (over every kind). Three groups by role: 1 only the
# command's own process, 2 it and the processes it forks, 3 only those.
# Within a group, by the kinds that run the function: a score from -2
# (only `run`'s kinds, d and o) to 2 (only the bubblewrap lines, a and b),
# ascending in groups 1 and 3 and descending in group 2, so that the
# functions each kind's own process runs (groups 1 and 2) or each kind's
# children run (2 and 3) lie together for one of the two families; then
# by the median first use. Each start then faults in fewer 64 KiB windows
# of code (the kernel maps the cached pages around each fault).
sort -k3,3 -k2,2 -k4,4n "$work/first-use" |
    awk '
        {
            k = $2 " " $3
            t[k] = t[k] " " $4
            roles[$3] = roles[$3] "," $2
            if (index(kinds[$3], $1) == 0) kinds[$3] = kinds[$3] $1
        }
        # The times of one role and function come in ascending order.
        function median(list,    v, n) {
            n = split(substr(list, 2), v, " ")
            return v[int((n + 1) / 2)]
        }
        END {
            for (s in roles) {
                main = index(roles[s], "main") > 0
                child = index(roles[s], "child") > 0
                group = main && child ? 2 : (main ? 1 : 3)
                score = 0
                if (index(kinds[s], "a")) score++
                if (index(kinds[s], "b")) score++
                if (index(kinds[s], "d")) score--
                if (index(kinds[s], "o")) score--
                if (group == 2) score = -score
                when = median(t[(main ? "main" : "child") " " s])
                print group, score, when, s
            }
        }' |
    sort -k1,1n -k2,2n -k3,3n -k4,4 | awk '{ print $4 }' >"$work/names"
{
    echo "# The functions of the saferoot command that a sandbox's start runs (written"
    echo "# by cli/hot-functions.sh; cli/dist.sh links the shipped binary with this"
    echo "# order: docs/performance.md, \"Hot code together\"). First those only"
    echo "# saferoot's own process runs, then those it and the processes it forks"
    echo "# run, then those only the forked ones run; in each group, those of"
    echo "# \`run\` and those of the bubblewrap personality on either side of those"
    echo "# of both, each in the order a start reaches them."
    cat "$work/names"
} >"$work/list"
count=$(grep -vc '^#' "$work/list" || true)
[ "$count" -gt 100 ] || die "only $count functions seen; is perf allowed to sample ($bin)?"
mv "$work/list" "$list"
say "$count functions written to $list"
