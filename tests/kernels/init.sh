#!/bin/busybox sh
# /init of the initramfs that tests/kernels/run.sh boots under qemu.
#
# Stage 1 (PID 1 on the kernel's initramfs root): copy everything into a
# tmpfs and switch_root there. pivot_root(2) refuses to move the initramfs
# root away (EINVAL), so a test that enters a root with pivot_root needs a
# root that is an ordinary mount.
#
# Stage 2 (PID 1 on the tmpfs): mount what a host has, load the modules in
# /modules/load (one file name a line, dependencies first), mount the
# ext4 disk run.sh made on /tmp, print the features saferoot sees, run each
# suite listed in /saferoot/suites with the test binary
# /saferoot/tests/<suite> in the package directory, and power off.
#
# Everything the host parses is on lines starting with "@@kernels ".

PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

mark() { echo "@@kernels $*"; }

if [ ! -e /.stage2 ]; then
    /bin/busybox mkdir -p /proc /sys /dev /newroot
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    exec </dev/console >/dev/console 2>&1
    /bin/busybox mount -t tmpfs -o mode=0755,size=80% tmpfs /newroot
    for e in /* /.[!.]*; do
        case $e in
        /proc | /sys | /dev | /newroot | '/.[!.]*') ;;
        *) /bin/busybox cp -a "$e" /newroot/ ;;
        esac
    done
    /bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev
    /bin/busybox touch /newroot/.stage2
    # The console stays open on /dev: take the mount along.
    /bin/busybox mount --move /dev /newroot/dev
    # If this fails, PID 1 exits, the kernel panics and qemu stops
    # (-no-reboot); run.sh then finds no results.
    exec /bin/busybox switch_root /newroot /init
fi

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm /dev/mqueue /tmp /run /sys/fs/cgroup
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mark "kernel $(uname -r)"
if [ -s /modules/load ]; then
    while read -r m; do
        insmod "/modules/$m" || mark "setup-error insmod $m"
    done </modules/load
fi
# The disk that run.sh made, for /tmp.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ -b /dev/vda ] && break
    sleep 1
done
mount -t ext4 /dev/vda /tmp || mark "setup-error cannot mount /dev/vda on /tmp"
chmod 1777 /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# As on a systemd host, where the tests normally run.
mount --make-rshared /
hostname kernels
ip link set lo up

# The test binaries' build-time path of the CLI (CARGO_BIN_EXE_saferoot).
saferoot=$(cat /saferoot/exe)
"$saferoot" features 2>&1 | sed 's/^/@@kernels features: /'

export RUST_BACKTRACE=1 HOME=/root TMPDIR=/tmp
mkdir -p /root
cd "$(cat /saferoot/manifest-dir)" || mark "setup-error cannot enter the package directory"
threads=$(cat /saferoot/threads)
suite_timeout=$(cat /saferoot/suite-timeout)
read -r suites </saferoot/suites
for suite in $suites; do
    mark "suite $suite begin"
    start=$(cut -d' ' -f1 /proc/uptime)
    timeout -s KILL "$suite_timeout" "/saferoot/tests/$suite" \
        --test-threads="$threads" </dev/null 2>&1
    rc=$?
    end=$(cut -d' ' -f1 /proc/uptime)
    mark "suite $suite end rc=$rc seconds=$(awk "BEGIN { printf \"%d\", $end - $start }")"
done
mark "done"
sync
poweroff -f
