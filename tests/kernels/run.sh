#!/usr/bin/env bash
# Runs saferoot's integration suites on real older kernels: Debian 12's 6.1
# and its 6.12 backport, each booted under qemu with software emulation
# (TCG; no KVM needed) from an initramfs that holds the test binaries.
#
#   tests/kernels/run.sh [SERIES...]      (default: 6.1 6.12)
#
# What it does:
#   1. installs what is missing with apt-get: qemu-system-x86, busybox-static,
#      cpio, util-linux (unshare for the user-namespace tests), xz-utils and
#      binutils (to unpack modules and strip the test binaries), e2fsprogs
#      (the guest's /tmp is an ext4 disk image);
#   2. finds the newest Debian cloud kernel of each series in apt's lists
#      (when this machine's sources lack them, a private apt configuration
#      for bookworm on the same Debian mirror is used: nothing of the
#      machine's own apt setup changes), downloads it with `apt-get download`
#      and unpacks vmlinuz and the modules the tests need into the cache
#      (target/kernels/, never installed as the machine's kernel);
#   3. builds the test binaries (`cargo test -p saferoot -p saferoot-cli
#      --all-features --no-run`) and packs them, the CLI they run, busybox, unshare and
#      the shared libraries of all of these into an initramfs whose /init is
#      tests/kernels/init.sh;
#   4. boots each kernel, bounded by `timeout`, and reads the serial console.
#
# It fails if a kernel ran no test, if any test failed, if a suite did not
# finish, or if a test was skipped (a `SKIPPED:` line from the harness). The
# last line is always
#   kernels: <version> N passed M failed; <version> N passed M failed
#
# Environment:
#   SAFEROOT_KERNELS_SUITES   test suites to run (default below)
#   SAFEROOT_KERNELS_TIMEOUT  seconds one boot may take (default 480)
#   SAFEROOT_KERNELS_THREADS  --test-threads in the guest (default 2)
#   SAFEROOT_KERNELS_SMP      guest CPUs (default 2)
#   SAFEROOT_KERNELS_CACHE    cache directory (default target/kernels)
#   SAFEROOT_KERNELS_PRIVATE_APT=1  always use the private apt configuration
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

# The suites whose behaviour depends on the kernel; see "Kernel matrix" in
# docs/architecture.md. harness and oci do not touch kernel features.
SUITES=${SAFEROOT_KERNELS_SUITES:-"mount mountinfo rootfs invariants all_or_nothing sec_policy sec_sources sec_devcopy sec_userns oci_hygiene minimal_ns cli bwrap"}
BOOT_TIMEOUT=${SAFEROOT_KERNELS_TIMEOUT:-480}
THREADS=${SAFEROOT_KERNELS_THREADS:-2}
SMP=${SAFEROOT_KERNELS_SMP:-2}
CACHE=${SAFEROOT_KERNELS_CACHE:-$repo/target/kernels}
SERIES=("$@")
((${#SERIES[@]})) || SERIES=(6.1 6.12)

# Modules the guest needs where the kernel builds them as modules: the
# virtio disk that holds /tmp, and overlayfs for the tests.
MODULES=(virtio_pci virtio_blk overlay)

APT_PACKAGES=(qemu-system-x86 busybox-static cpio util-linux bsdutils xz-utils binutils e2fsprogs)

note() { printf 'kernels: %s\n' "$*" >&2; }
die() {
    note "$*"
    printf 'kernels: %s\n' "failed before any kernel ran"
    exit 1
}

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/run.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------------------
# Packages

apt_updated=no
apt_update_once() {
    if [[ $apt_updated == no ]]; then
        apt-get update -q >&2
        apt_updated=yes
    fi
}

install_missing() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    note "installing: ${missing[*]}"
    [[ $(id -u) == 0 ]] || die "must run as root to install ${missing[*]}"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >&2
}

# apt options: empty for the machine's own configuration, or those of a
# private one (see private_apt).
APT_OPTS=()

# A private apt configuration under the cache, for machines whose sources
# do not list Debian 12: bookworm and bookworm-security from the Debian
# mirrors this machine already uses, with Debian's archive key.
private_apt() {
    local dir=$CACHE/apt main security f text=""
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && text+=$(<"$f")$'\n'
    done
    main=$(grep -oE 'https?://[^ ]+/debian/?( |$)' <<<"$text" | head -n1 | tr -d ' ' || true)
    security=$(grep -oE 'https?://[^ ]+/debian-security/?( |$)' <<<"$text" | head -n1 | tr -d ' ' || true)
    [[ -n $main ]] || die "no Debian mirror in this machine's apt sources"
    [[ -n $security ]] || security=${main%/}-security
    mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/parts"
    {
        printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm main\n' "$main"
        printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-security main\n' "$security"
    } >"$dir/sources.list"
    APT_OPTS=(
        -o "Dir::Etc::SourceList=$dir/sources.list"
        -o "Dir::Etc::SourceParts=$dir/parts"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::Cache::Archives=$dir/archives"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
        -o "APT::Architecture=amd64"
    )
    note "using a private apt configuration for bookworm ($dir)"
    apt-get "${APT_OPTS[@]}" update -q >&2
}

# The name pattern of Debian 12's cloud kernel packages of a series.
package_pattern() {
    case $1 in
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64$' ;;
    *) die "unknown kernel series $1 (known: 6.1 6.12)" ;;
    esac
}

# newest_package SERIES: "name version" of the newest package of the series
# in apt's lists, or nothing.
newest_package() {
    local name
    name=$(apt-cache "${APT_OPTS[@]}" search --names-only "$(package_pattern "$1")" |
        awk '{ print $1 }' | sort -V | tail -n1)
    [[ -n $name ]] || return 0
    printf '%s %s\n' "$name" \
        "$(apt-cache "${APT_OPTS[@]}" policy "$name" | awk '/Candidate:/ { print $2 }')"
}

# fetch_kernel SERIES: makes $CACHE/<package>_<version>/ with vmlinuz,
# kernel.release, modules/*.ko and modules/load, and sets KDIR to it.
fetch_kernel() {
    local series=$1 name ver dir
    read -r name ver < <(newest_package "$series") || true
    if [[ -z ${name:-} && ${#APT_OPTS[@]} == 0 ]]; then
        apt_update_once
        read -r name ver < <(newest_package "$series") || true
        if [[ -z ${name:-} ]]; then
            private_apt
            read -r name ver < <(newest_package "$series") || true
        fi
    fi
    [[ -n ${name:-} && -n ${ver:-} && $ver != "(none)" ]] ||
        die "no Debian 12 cloud kernel package for $series in apt's lists"
    dir=$CACHE/${name}_${ver}
    KDIR=$dir
    # The cache holds the modules of MODULES as it was then.
    [[ -f $dir/ok && $(cat "$dir/ok") == "${MODULES[*]}" ]] && return 0
    note "fetching $name $ver"
    rm -rf "$dir" "$WORK/deb"
    mkdir -p "$WORK/deb" "$dir/modules"
    # The download runs as root into a directory of ours; apt's sandbox
    # user could not write there.
    if ! (cd "$WORK/deb" && apt-get "${APT_OPTS[@]}" -q -o APT::Sandbox::User=root \
        download "$name=$ver" >&2); then
        # The lists may name a version the mirror no longer has.
        apt-get "${APT_OPTS[@]}" update -q >&2
        (cd "$WORK/deb" && apt-get "${APT_OPTS[@]}" -q -o APT::Sandbox::User=root \
            download "$name=$ver" >&2) || die "cannot download $name $ver"
    fi
    dpkg-deb -x "$WORK"/deb/*.deb "$WORK/deb/x"
    local kver
    kver=$(ls "$WORK/deb/x/lib/modules")
    cp "$WORK/deb/x/boot/vmlinuz-$kver" "$dir/vmlinuz"
    cp "$WORK/deb/x/boot/config-$kver" "$dir/config"
    echo "$kver" >"$dir/kernel.release"
    local mdir=$WORK/deb/x/lib/modules/$kver
    : >"$dir/modules/load"
    local m
    for m in "${MODULES[@]}"; do
        add_module "$mdir" "$dir/modules" "$m"
    done
    rm -rf "$WORK/deb"
    echo "${MODULES[*]}" >"$dir/ok"
}

# add_module MODDIR OUT NAME: copies module NAME and, first, the modules it
# depends on into OUT, uncompressed, and appends them to OUT/load in load
# order. A module listed in modules.builtin needs nothing. The package has
# no modules.dep (depmod makes it at install time): the dependencies are
# read from the module's own .modinfo ("depends=a,b").
add_module() {
    local mdir=$1 out=$2 name=$3 path deps d
    local pattern=${name//[-_]/[-_]}
    grep -qE "/${pattern}\.ko\$" "$mdir/modules.builtin" 2>/dev/null && return 0
    grep -qx "$name.ko" "$out/load" && return 0
    path=$(find "$mdir/kernel" -name "$pattern.ko*" | head -n1)
    [[ -n $path ]] || die "module $name is neither built in nor in the package"
    case $path in
    *.xz) xz -dc "$path" >"$out/$name.ko.tmp" ;;
    *.zst) zstd -dc "$path" >"$out/$name.ko.tmp" ;;
    *.gz) gzip -dc "$path" >"$out/$name.ko.tmp" ;;
    *) cp "$path" "$out/$name.ko.tmp" ;;
    esac
    deps=$(tr '\0' '\n' <"$out/$name.ko.tmp" | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do
        add_module "$mdir" "$out" "$d"
    done
    mv "$out/$name.ko.tmp" "$out/$name.ko"
    echo "$name.ko" >>"$out/load"
}

# ---------------------------------------------------------------------------
# The initramfs

# copy_with_libs FILE DEST STAGE: copies FILE to STAGE/DEST without debug
# info, and every shared library it loads to the same path under STAGE.
copy_with_libs() {
    local file=$1 dest=$2 stage=$3 lib
    mkdir -p "$stage$(dirname "$dest")"
    objcopy --strip-debug "$file" "$stage$dest"
    for lib in $(ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' || true); do
        [[ -e $stage$lib ]] && continue
        mkdir -p "$stage$(dirname "$lib")"
        cp -L "$lib" "$stage$lib"
    done
}

build_common_initramfs() {
    local stage=$WORK/stage suite exe json
    json=$WORK/build.json
    note "building the test binaries"
    # The test step's own feature set (`--workspace --all-features`), so
    # that after it nothing is built again.
    cargo test --workspace --all-features --no-run \
        --message-format=json-render-diagnostics \
        >"$json" || die "cargo test --no-run failed"

    # "kind name test executable" for each artifact with an executable
    # (test: whether cargo built it as a test harness).
    sed -n '/"reason":"compiler-artifact"/{/"executable":"/!d
        s/.*"target":{"kind":\["\([a-z-]*\)".*"name":"\([^"]*\)".*"test":\(true\|false\)},"features".*"executable":"\([^"]*\)".*/\1 \2 \3 \4/p
    }' "$json" >"$WORK/artifacts"

    rm -rf "$stage"
    mkdir -p "$stage"/{usr/bin,usr/sbin,usr/lib,usr/lib64,saferoot/tests,modules}
    ln -s usr/bin "$stage/bin"
    ln -s usr/sbin "$stage/sbin"
    ln -s usr/lib "$stage/lib"
    ln -s usr/lib64 "$stage/lib64"
    install -m 0755 "$here/init.sh" "$stage/init"
    cp /bin/busybox "$stage/usr/bin/busybox"
    copy_with_libs "$(command -v unshare)" /usr/bin/unshare "$stage"
    # script(1), for the CLI test that runs saferoot on a terminal; and
    # util-linux's mount and umount, which the tests run inside sandboxes
    # (busybox's mount turns `-o remount,bind,...` into something else).
    copy_with_libs "$(command -v script)" /usr/bin/script "$stage"
    copy_with_libs "$(command -v mount)" /usr/bin/mount "$stage"
    copy_with_libs "$(command -v umount)" /usr/bin/umount "$stage"
    # glibc's ldd is a bash script; the CLI tests only need the list of
    # libraries (and "not a dynamic executable" for the static busybox).
    cat >"$stage/usr/bin/ldd" <<'EOF'
#!/bin/sh
/lib64/ld-linux-x86-64.so.2 --list "$1" 2>/dev/null && exit 0
echo "	not a dynamic executable"
exit 1
EOF
    chmod 0755 "$stage/usr/bin/ldd"

    # The CLI goes where the tests look for it: CARGO_BIN_EXE_saferoot is
    # the build's absolute path.
    exe=$(awk '$1 == "bin" && $2 == "saferoot" && $3 == "false" { print $4 }' "$WORK/artifacts")
    [[ -n $exe ]] || die "cargo built no saferoot binary"
    copy_with_libs "$exe" "$exe" "$stage"
    echo "$exe" >"$stage/saferoot/exe"
    for suite in $SUITES; do
        exe=$(awk -v s="$suite" '$1 == "test" && $2 == s { print $4 }' "$WORK/artifacts")
        [[ -n $exe ]] || die "no test binary for suite $suite"
        copy_with_libs "$exe" "/saferoot/tests/$suite" "$stage"
    done
    # libtest runs integration tests in the package's directory, and some
    # read their fixtures relative to it.
    mkdir -p "$stage$repo/tests"
    cp -r "$repo/tests/fixtures" "$stage$repo/tests/"
    echo "$repo" >"$stage/saferoot/manifest-dir"
    # What the CLI tests expect of a host's /etc: a few files and a
    # directory with files in it.
    mkdir -p "$stage/etc/default"
    echo kernels >"$stage/etc/hostname"
    echo 'root:x:0:0:root:/root:/bin/sh' >"$stage/etc/passwd"
    echo 'root:x:0:' >"$stage/etc/group"
    echo '# saferoot kernel tests' >"$stage/etc/default/saferoot-kernels"
    echo "$SUITES" >"$stage/saferoot/suites"
    echo "$THREADS" >"$stage/saferoot/threads"
    # A suite that hangs is killed in the guest, so the others still report.
    echo $((BOOT_TIMEOUT * 2 / 3)) >"$stage/saferoot/suite-timeout"

    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) >"$WORK/common.cpio"
    note "initramfs: $(du -m "$WORK/common.cpio" | cut -f1) MiB"
}

# ---------------------------------------------------------------------------
# Booting and reading the results

# boot KERNEL_DIR LOG: boots the kernel with the initramfs, console to LOG.
boot() {
    local kdir=$1 log=$2 initrd=$WORK/initrd
    rm -rf "$WORK/mods"
    mkdir -p "$WORK/mods/modules"
    cp "$kdir"/modules/* "$WORK/mods/modules/"
    (cd "$WORK/mods" && find modules | cpio -o -H newc -R 0:0 --quiet) >"$WORK/mods.cpio"
    # The kernel unpacks concatenated archives one after the other.
    cat "$WORK/common.cpio" "$WORK/mods.cpio" >"$initrd"
    # /tmp on a disk, as on the machines the suites normally run on: the
    # tests make their roots under /tmp and some expect a block-device
    # filesystem there (bind mounts of host directories, ext4 as "/").
    # Without hashed directory indexes: 6.1's ext4 now and then reported
    # its htree corrupt (EUCLEAN, "directory block past i_size") under the
    # rename-exchange race of the CVE-2024-45310 test, which is about
    # saferoot's path resolution, not ext4.
    rm -f "$WORK/tmp.img"
    truncate -s 4G "$WORK/tmp.img"
    mkfs.ext4 -q -F -O ^dir_index -L saferoot-tmp "$WORK/tmp.img"
    timeout --kill-after=10 "$BOOT_TIMEOUT" \
        qemu-system-x86_64 -accel tcg -cpu max -smp "$SMP" -m 2048 \
        -nographic -no-reboot -kernel "$kdir/vmlinuz" -initrd "$initrd" \
        -drive "file=$WORK/tmp.img,format=raw,if=virtio,cache=unsafe" \
        -append "console=ttyS0 panic=-1 quiet" </dev/null 2>&1 | tr -d '\r' >"$log"
    local rc=${PIPESTATUS[0]}
    rm -f "$WORK/tmp.img"
    return "$rc"
}

# check LOG: prints "version passed failed problems" for one boot.
check() {
    awk -v suites="$SUITES" '
        BEGIN { n = split(suites, want, " ") }
        /^@@kernels kernel / { version = $3 }
        /^@@kernels suite [^ ]+ begin$/ { suite = $3; begun[suite] = 1 }
        /^@@kernels suite [^ ]+ end / {
            s = $3; end[s] = 1
            rc = $5; sub(/^rc=/, "", rc)
            if (rc != 0) problems = problems " " s ":exit=" rc
            if (sp[s] == 0) problems = problems " " s ":no-test-passed"
            suite = ""
        }
        /^test result: / && suite != "" {
            p = 0; f = 0
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) ~ /^passed;?$/) p = $i
                if ($(i + 1) ~ /^failed;?$/) f = $i
            }
            passed += p; failed += f; sp[suite] += p
        }
        /SKIPPED:/ { skipped++ }
        /^@@kernels setup-error / { setup++ }
        /^@@kernels done$/ { done = 1 }
        END {
            for (i = 1; i <= n; i++)
                if (!end[want[i]]) problems = problems " " want[i] ":did-not-finish"
            if (skipped) problems = problems " skipped=" skipped
            if (setup) problems = problems " setup-errors=" setup
            if (!done) problems = problems " no-clean-shutdown"
            if (passed == 0) problems = problems " no-test-passed"
            if (version == "") version = "unknown"
            printf "%s %d %d %s\n", version, passed, failed, (problems == "" ? "-" : substr(problems, 2))
        }
    ' "$1"
}

# ---------------------------------------------------------------------------

install_missing "${APT_PACKAGES[@]}"
[[ ${SAFEROOT_KERNELS_PRIVATE_APT:-} == 1 ]] && private_apt

KDIRS=()
for s in "${SERIES[@]}"; do
    fetch_kernel "$s"
    KDIRS+=("$KDIR")
done
build_common_initramfs

summary=()
status=0
for kdir in "${KDIRS[@]}"; do
    kver=$(cat "$kdir/kernel.release")
    log=$CACHE/console-$kver.log
    note "booting $kver (timeout ${BOOT_TIMEOUT}s)"
    start=$SECONDS
    set +e
    boot "$kdir" "$log"
    qrc=$?
    set -e
    secs=$((SECONDS - start))
    sed "s/^/[$kver] /" "$log"
    read -r version passed failed problems < <(check "$log")
    [[ $version == unknown ]] && version=$kver
    [[ $problems == - ]] && problems=""
    if ((qrc == 124 || qrc == 137)); then
        problems+=" timed-out-after-${BOOT_TIMEOUT}s"
    elif ((qrc != 0)); then
        problems+=" qemu-exit=$qrc"
    fi
    problems=${problems# }
    note "$version: $passed passed, $failed failed in ${secs}s${problems:+ (problems: $problems)}"
    if [[ -n $problems ]] || ((failed > 0)); then
        grep -n 'SKIPPED:' "$log" >&2 || true
        status=1
    fi
    summary+=("$version $passed passed $failed failed")
done

line=$(printf '%s; ' "${summary[@]}")
printf 'kernels: %s\n' "${line%; }"
exit "$status"
