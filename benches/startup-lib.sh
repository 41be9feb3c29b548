# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # prog, all_tools, ... come from the caller; now, total, ... go back to it
# Shared by benches/startup.sh, benches/startup-concurrent.sh, benches/oci.sh
# and benches/bwrap.sh (sourced, not run): the private mount namespace they
# measure in, the extra mounts, the OCI bundles, the command line of each
# tool, the clock and the statistics.
#
# The caller sets `prog` (its name in messages) before sourcing, and
# `all_tools` (the tools it knows).

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { say "$*"; exit 2; }

# ---- outside the namespace ---------------------------------------------------

# check_outer: what both scripts need before anything starts.
check_outer() {
    [ "$(id -u)" = 0 ] || die "needs root (it mounts in a private mount namespace)"
    command -v unshare >/dev/null || die "needs unshare(1) from util-linux"
    local t
    for t in ${TOOLS:-$all_tools}; do
        case " $all_tools " in *" $t "*) ;; *) die "unknown tool '$t' in TOOLS (known: $all_tools)" ;; esac
    done
}

# find_saferoot REPO: sets $saferoot to $SAFEROOT, or to the shipped build
# made now (cli/dist.sh: static, LTO; CARGO_TARGET_DIR honoured); an
# absolute path.
find_saferoot() {
    saferoot=${SAFEROOT:-}
    if [ -z "$saferoot" ]; then
        say "building saferoot (cli/dist.sh)..."
        saferoot=$("$1/cli/dist.sh")
    fi
    [ -x "$saferoot" ] || die "$saferoot is not an executable"
    saferoot=$(cd "$(dirname "$saferoot")" && pwd)/$(basename "$saferoot")
}

# ---- inside the namespace ----------------------------------------------------

# setup_inner WORK: a tmpfs on WORK for everything the run makes (it goes
# with the namespace), and the host quirks worked around.
setup_inner() {
    work=$1
    mount -t tmpfs -o mode=755 saferoot-startup-bench "$work"
    mkdir "$work/samples" "$work/clutter" "$work/state" "$work/bin"
    ln -s "$saferoot" "$work/bin/bwrap"
    ours_bwrap="$work/bin/bwrap"
    pin="$work/mount-ns"
    # crun 1.8 refuses to start on a host whose cgroup2 hierarchy, mounted
    # beside cgroup v1 ones, has controllers ("hybrid mode"); without that
    # mount it uses cgroup v1. Only this namespace loses it.
    if [ -d /sys/fs/cgroup/cpu ] &&
        awk '$5 == "/sys/fs/cgroup/unified" { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        umount -l /sys/fs/cgroup/unified
        say "note: /sys/fs/cgroup/unified (cgroup2 beside cgroup v1) detached in the bench namespace, for crun"
    fi
}

# Microseconds since the epoch, in $now, without forking.
if [ -n "${EPOCHREALTIME:-}" ]; then
    now_us() { now=${EPOCHREALTIME/[.,]/}; }
else
    now_us() { now=$(($(date +%s%N) / 1000)); }
fi

# stats FILE: the median and the 90th percentile (nearest rank), in ms, of
# the samples in FILE (µs, one a line), or "n/a n/a" for none.
stats() {
    sort -n "$1" | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "n/a n/a"; exit }
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            r = int(0.9 * NR); if (r < 0.9 * NR) r++
            printf "%.2f %.2f\n", med / 1000, v[r] / 1000
        }'
}

host_mounts() { awk 'END { print NR }' /proc/self/mountinfo; }

# make_clutter DIR N: exactly N mounts below the directory DIR: one small
# tmpfs at DIR/u bound onto its own subdirectories (each rbind doubles the
# tree), plus a copy of the tree at each set bit of N below the highest.
# About 2 log2(N) mount(8) calls, where one mount(8) per mount would take
# minutes (each reads the whole mount table).
make_clutter() {
    local dir=$1 n=$2 h=0 k
    ((n > 0)) || return 0
    while ((n >> (h + 1))); do h=$((h + 1)); done
    mkdir -p "$dir/u"
    mount -t tmpfs -o size=16k,nr_inodes=64,mode=755 saferoot-bench-clutter "$dir/u"
    for ((k = 0; k < h; k++)); do mkdir "$dir/u/c$k"; done
    for ((k = 0; k < h; k++)); do
        if (((n >> k) & 1)); then
            mkdir "$dir/p$k"
            mount --rbind "$dir/u" "$dir/p$k"
        fi
        mount --rbind "$dir/u" "$dir/u/c$k"
    done
}

# set_clutter N: replaces the extra mounts by exactly N new ones (checked).
set_clutter() {
    local d m base
    for d in "$work/clutter"/*; do
        [ -d "$d" ] || continue
        for m in "$d"/u "$d"/p*; do
            if [ -e "$m" ]; then umount -l "$m"; fi
        done
        rm -rf "$d"
    done
    base=$(host_mounts)
    mkdir "$work/clutter/$1"
    make_clutter "$work/clutter/$1" "$1"
    total=$(host_mounts)
    if ((total - base != $1)); then
        say "made $((total - base)) mounts instead of $1"
        exit 1
    fi
}

# make_bundle RUNTIME DIR: an OCI bundle with the runtime's default
# config.json (`crun spec`, `runc spec`), /bin/true for the shell, no
# terminal, and the host's /usr bound read-only into a rootfs that holds
# only the merged-usr symlinks. Made once.
make_bundle() {
    local runtime=$1 dir=$2 l
    [ ! -e "$dir/config.json" ] || return 0
    mkdir -p "$dir/rootfs/usr"
    for l in bin lib lib64 sbin; do
        ln -s "usr/$l" "$dir/rootfs/$l"
    done
    (cd "$dir" && "$runtime" spec) || return 1
    awk '
        /"terminal": true/ { sub(/true/, "false") }
        /^[ \t]*"sh"$/ { sub(/"sh"/, "\"/bin/true\"") }
        { print }
        /^[ \t]*"mounts": \[$/ {
            print "\t\t{\"destination\": \"/usr\", \"type\": \"bind\", \"source\": \"/usr\", \"options\": [\"rbind\", \"ro\", \"nosuid\", \"nodev\"]},"
            done = 1
        }
        END { exit !done }
    ' "$dir/config.json" >"$dir/config.json.new" || return 1
    mv "$dir/config.json.new" "$dir/config.json"
    grep -q '"/bin/true"' "$dir/config.json"
}

# select_tools: the tools of $TOOLS that can run here, in $tools; the
# others are named with the reason.
select_tools() {
    local t
    tools=()
    real_bwrap=${BWRAP:-$(command -v bwrap || true)}
    oci_runtime=""
    if command -v crun >/dev/null; then
        oci_runtime=crun
    elif command -v runc >/dev/null; then
        oci_runtime=runc
    fi
    for t in $TOOLS; do
        case $t in
            bwrap)
                if [ -z "$real_bwrap" ] || [ ! -x "$real_bwrap" ]; then
                    say "skipping bwrap: no bubblewrap on PATH (set BWRAP=/path/to/bwrap)"
                    continue
                elif [ "$(readlink -f "$real_bwrap")" = "$(readlink -f "$saferoot")" ]; then
                    say "skipping bwrap: $real_bwrap is saferoot itself"
                    continue
                fi
                ;;
            crun | runc)
                if ! command -v "$t" >/dev/null; then
                    say "skipping $t: not installed"
                    continue
                fi
                make_bundle "$t" "$work/bundle-$t" || {
                    say "skipping $t: could not make its default bundle"
                    continue
                }
                ;;
            saferoot-oci*)
                if [ -z "$oci_runtime" ]; then
                    say "skipping $t: neither crun nor runc is installed to write a default config.json"
                    continue
                fi
                make_bundle "$oci_runtime" "$work/bundle-$oci_runtime" || {
                    say "skipping $t: could not make the default bundle"
                    continue
                }
                ;;
        esac
        tools+=("$t")
    done
    ((${#tools[@]} > 0)) || die "no tool to run"
}

# The flatpak-shaped bubblewrap line of benches/bwrap.sh (b).
bwrap_args=(--ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64
    --symlink usr/bin /bin --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp
    --unshare-all --die-with-parent --new-session /bin/true)

# run_tool NAME ID: one start of the tool running /bin/true; ID names the
# container for crun and runc (unique among those alive).
run_tool() {
    case $1 in
        saferoot) "$saferoot" run -- /bin/true ;;
        saferoot+mountns) "$saferoot" run --mount-ns "$pin" -- /bin/true ;;
        saferoot-bwrap) "$ours_bwrap" "${bwrap_args[@]}" ;;
        saferoot-bwrap+mountns) SAFEROOT_MOUNT_NS=$pin "$ours_bwrap" "${bwrap_args[@]}" ;;
        bwrap) "$real_bwrap" "${bwrap_args[@]}" ;;
        saferoot-oci) "$saferoot" run --bundle "$work/bundle-$oci_runtime" -- /bin/true ;;
        saferoot-oci+mountns)
            "$saferoot" run --mount-ns "$pin" --bundle "$work/bundle-$oci_runtime" -- /bin/true ;;
        # No cgroup for crun: saferoot makes none either.
        crun) crun --cgroup-manager=disabled --root "$work/state/crun" run \
            --bundle "$work/bundle-crun" "startup-bench-$2" ;;
        # runc 1.1 cannot be told to skip cgroups; it uses cgroupfs.
        runc) runc --root "$work/state/runc" run --bundle "$work/bundle-runc" "startup-bench-$2" ;;
    esac
}

# make_pin: the pinned minimal namespace, made once before any extra
# mounts exist, outside every timing. The kernel refuses (ELOOP, "Too many
# levels of symbolic links") to pin a namespace whose id is not above the
# pinning namespace's, and Linux 6.18 hands out namespace ids from per-CPU
# batches, so a pin made on the wrong CPU fails: it is tried on each CPU in
# turn (taskset), twice round.
make_pin() {
    local try cpus=() c
    if command -v taskset >/dev/null; then
        for ((c = 0; c < $(nproc); c++)); do cpus+=("taskset -c $c"); done
    else
        cpus=("" "" "" "")
    fi
    for try in "${cpus[@]}" "${cpus[@]}"; do
        # shellcheck disable=SC2086 # $try is a command prefix or nothing
        if $try "$saferoot" run --mount-ns "$pin" -- /bin/true </dev/null 2>"$work/err"; then
            return 0
        fi
        printf '%s: %s\n' "${try:-no taskset}" "$(head -c 300 "$work/err")" >>"$work/pin-errors"
        if [ -e "$pin" ]; then umount "$pin" 2>/dev/null || true; rm -f "$pin"; fi
    done
    cat "$work/pin-errors" >&2
    die "saferoot run --mount-ns $pin failed on every CPU: cannot make the minimal namespace"
}

# print_versions: what is being measured, on stderr.
print_versions() {
    local r
    say "saferoot:   $saferoot"
    if [ -n "$real_bwrap" ] && [ -x "$real_bwrap" ]; then
        say "bubblewrap: $real_bwrap ($("$real_bwrap" --version 2>/dev/null || echo version unknown))"
    fi
    for r in crun runc; do
        if command -v $r >/dev/null; then
            say "$r:       $(command -v $r) ($($r --version | head -n1))"
        fi
    done
    say "tools:      ${tools[*]}"
}
