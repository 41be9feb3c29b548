#!/bin/sh
# Installs libsaferoot into a temporary prefix, builds the C test suite and
# the documented example against it through pkg-config with
# `-std=c99 -Wall -Wextra -Werror`, and runs them.
#
#   ffi/tests/run-c-tests.sh              run the suite
#   ffi/tests/run-c-tests.sh --valgrind   ... and again under valgrind
#                                         (definite leaks and memory errors fail)
#   ffi/tests/run-c-tests.sh --asan       ... and again built with AddressSanitizer
#                                         and LeakSanitizer (any leak fails)
# Both flags may be given; CI passes both.
#
# Why both: valgrind 3.19 (Debian 12) does not know the mount API system
# calls (open_tree, fsopen, move_mount, mount_setattr, openat2, ...) and
# answers ENOSYS, so under valgrind the library sees a kernel without them;
# the suite then checks the unsupported errors in place of real mounts
# (SAFEROOT_TEST_UNDER_VALGRIND=1 tells it that this is expected). The
# sanitizer build runs the whole suite with real mounts and checks every
# allocation, the Rust library's included (they go through malloc).
#
# Needs root (the suite makes real mounts in a private mount namespace), gcc,
# pkg-config, util-linux's unshare, and valgrind for --valgrind. Each run of
# the suite ends with a line "N passed, M failed".
set -eu

valgrind=0
asan=0
for arg in "$@"; do
    case "$arg" in
        --valgrind) valgrind=1 ;;
        --asan) asan=1 ;;
        *) echo "usage: $0 [--valgrind] [--asan]" >&2; exit 2 ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
ffi=$(dirname "$here")
repo=$(dirname "$ffi")
work=$(mktemp -d /tmp/saferoot-c-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

"$ffi/install.sh" "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags="-std=c99 -Wall -Wextra -Werror -g $(pkg-config --cflags saferoot)"
libs="$(pkg-config --libs saferoot) -Wl,-rpath,$prefix/lib"
cc=${CC:-gcc}

"$here/check-doc-example.sh" "$repo/docs/c-api.md" ffi/examples/example.c

echo "== building the C tests and the example against $prefix"
# shellcheck disable=SC2086
$cc $cflags "$here/c/test_saferoot.c" $libs -o "$work/test_saferoot"
# shellcheck disable=SC2086
$cc $cflags "$ffi/examples/example.c" $libs -o "$work/example"
# The static library links too (Libs.private lists what it needs).
static_libs=$(pkg-config --static --libs-only-l saferoot | sed 's/-lsaferoot//')
# shellcheck disable=SC2086
$cc $cflags "$ffi/examples/example.c" "$prefix/lib/libsaferoot.a" $static_libs \
    -o "$work/example-static"
# The program must find libsaferoot.so.0 by its soname.
if ! readelf -d "$work/test_saferoot" | grep -q 'NEEDED.*\[libsaferoot\.so\.0\]'; then
    echo "test binary does not depend on libsaferoot.so.0" >&2
    exit 1
fi

# Every exported function is saferoot_* at version SAFEROOT_0.1, and the
# library exports nothing else.
lib="$prefix/lib/libsaferoot.so.0"
exported=$(objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" { print $(NF-1), $NF }')
if [ -z "$exported" ]; then
    echo "libsaferoot.so.0 exports nothing" >&2
    exit 1
fi
bad=$(printf '%s\n' "$exported" | awk '
    $1 == "SAFEROOT_0.1" && $2 ~ /^saferoot_/ { next }
    $1 == "SAFEROOT_0.1" && $2 == "SAFEROOT_0.1" { next }
    { print }')
if [ -n "$bad" ]; then
    echo "libsaferoot.so.0 exports symbols without version SAFEROOT_0.1 or outside saferoot_*:" >&2
    printf '%s\n' "$bad" >&2
    exit 1
fi
echo "== libsaferoot.so.0: $(printf '%s\n' "$exported" | grep -c ' saferoot_') functions, all at SAFEROOT_0.1"

echo "== example (dynamic and static), in a private mount namespace"
mkdir -p "$work/rootfs"
unshare --mount --propagation private "$work/example" "$work/rootfs"
unshare --mount --propagation private "$work/example-static" "$work/rootfs"

echo "== C test suite"
"$work/test_saferoot"

if [ "$valgrind" = 1 ]; then
    echo "== C test suite under valgrind"
    status=0
    SAFEROOT_TEST_UNDER_VALGRIND=1 valgrind --quiet --leak-check=full \
        --errors-for-leak-kinds=definite --error-exitcode=99 \
        --log-file="$work/valgrind.log" "$work/test_saferoot" || status=$?
    # Everything but the notes about system calls valgrind does not know.
    grep -v -e 'unhandled amd64-linux syscall' -e 'You may be able to write' \
        -e 'README_MISSING_SYSCALL' -e 'Nevertheless we consider' \
        -e 'valgrind.org/support/bug_reports' "$work/valgrind.log" || true
    if [ "$status" != 0 ]; then
        echo "valgrind run failed (exit $status)" >&2
        exit 1
    fi
fi

if [ "$asan" = 1 ]; then
    echo "== C test suite built with AddressSanitizer and LeakSanitizer"
    # shellcheck disable=SC2086
    $cc $cflags -fsanitize=address -fno-omit-frame-pointer "$here/c/test_saferoot.c" $libs \
        -o "$work/test_saferoot_asan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=98 \
        LSAN_OPTIONS=report_objects=1 "$work/test_saferoot_asan"
fi
