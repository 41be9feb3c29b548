#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time on its
# committed corpus (fuzz/corpus/TARGET) with its dictionary.
#
#   fuzz/run.sh [-t SECONDS] [-j JOBS] [-w WORKDIR] [TARGET...]
#
# -t: seconds per target (default 60). -j: how many targets run at once
# (default 1; each is one libFuzzer process on one core). -w: where
# libFuzzer keeps the inputs it finds and its logs (default: a temporary
# directory, removed at the end; give fuzz/work to keep them between
# runs). Without TARGETs, every target runs. The results are printed in
# the order of the targets once all have run.
#
# Needs root (archive_unpack mounts tmpfs instances in a private mount
# namespace) and cargo-fuzz; builds with the stable toolchain through
# RUSTC_BOOTSTRAP=1 (at normal priority: the build counts against CI's
# time budget). Each target runs in one process at the lowest CPU
# priority (the time is fixed; only its executions get fewer). A crash,
# a leak, a timeout (-timeout) or running out of memory (-rss_limit_mb)
# fails the target; the input is left in fuzz/artifacts/TARGET/. The
# last line is "N passed, M failed".
set -euo pipefail

# The whole script is one function, read before it runs: editing the file
# while a long run is going does not disturb it.
main() {
    FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

    SECONDS_EACH=60
    WORK=
    JOBS=1
    while getopts "t:w:j:" opt; do
        case $opt in
        t) SECONDS_EACH=$OPTARG ;;
        w) WORK=$OPTARG ;;
        j) JOBS=$OPTARG ;;
        *) exit 2 ;;
        esac
    done
    shift $((OPTIND - 1))

    ALL=(oci_plan mount_options mountinfo statmount bwrap_args archive_unpack ffi_plan_json)
    TARGETS=("$@")
    if ((${#TARGETS[@]} == 0)); then
        TARGETS=("${ALL[@]}")
    fi

    dict_of() {
        case $1 in
        oci_plan | ffi_plan_json) echo "$FUZZ_DIR/dict/json.dict" ;;
        statmount) ;;
        *) echo "$FUZZ_DIR/dict/$1.dict" ;;
        esac
    }

    # libFuzzer's flags for each target, beyond the common ones.
    flags_of() {
        case $1 in
        archive_unpack) echo "-max_len=32768" ;;
        *) echo "-max_len=16384" ;;
        esac
    }

    cleanup_work=no
    if [[ -z $WORK ]]; then
        WORK=$(mktemp -d /tmp/saferoot-fuzz.XXXXXX)
        cleanup_work=yes
    fi
    mkdir -p "$WORK"
    WORK=$(cd "$WORK" && pwd)
    cd "$FUZZ_DIR"
    trap 'if [[ $cleanup_work == yes ]]; then rm -rf "$WORK"; fi' EXIT

    export RUSTC_BOOTSTRAP=1
    # cargo-fuzz builds into fuzz/target; a CARGO_TARGET_DIR meant for the
    # workspace must not redirect it.
    unset CARGO_TARGET_DIR

    # cargo-fuzz compiles release builds as one codegen unit each, which
    # leaves a core idle through the long crates; 16 units build the
    # targets in a fraction of the time and fuzz nearly as fast. Building
    # and running must pass the same flags, or each run builds again.
    BUILD_FLAGS=(--fuzz-dir "$FUZZ_DIR" --codegen-units 16)

    echo "fuzz: building ${TARGETS[*]}"
    build_start=$SECONDS
    if (($# == 0)); then
        # All targets in one cargo invocation: the dependencies are built
        # once, both cores busy throughout.
        cargo fuzz build "${BUILD_FLAGS[@]}"
    else
        for t in "${TARGETS[@]}"; do
            cargo fuzz build "${BUILD_FLAGS[@]}" "$t"
        done
    fi
    echo "fuzz: built in $((SECONDS - build_start))s"

    # run_one TARGET: runs it for SECONDS_EACH and leaves libFuzzer's
    # exit status in its log directory (rc).
    run_one() {
        local t=$1 corpus=$WORK/corpus/$1 logs=$WORK/logs/$1 dict rc
        mkdir -p "$corpus" "$logs" "$FUZZ_DIR/corpus/$t"
        dict=$(dict_of "$t")
        rm -f "$logs"/fuzz-*.log "$logs/rc"
        set +e
        # shellcheck disable=SC2046
        (cd "$logs" && nice -n 19 cargo fuzz run "${BUILD_FLAGS[@]}" "$t" \
            "$corpus" "$FUZZ_DIR/corpus/$t" -- \
            -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -jobs=1 -workers=1 -print_final_stats=1 \
            ${dict:+-dict="$dict"} $(flags_of "$t") >"$logs/cargo-fuzz.out" 2>&1)
        rc=$?
        set -e
        echo "$rc" >"$logs/rc"
    }

    # report TARGET: prints how its run went; fails when it failed (or
    # left no exit status: it did not finish).
    report() {
        local t=$1 logs=$WORK/logs/$1 log rc runs cov rss
        rc=$(cat "$logs/rc" 2>/dev/null || echo "none")
        log=$logs/fuzz-0.log
        [[ -f $log ]] || log=$logs/cargo-fuzz.out
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n1 | awk '{print $2}' || true)
        cov=$(grep -Eo '(DONE|pulse|NEW|REDUCE|INITED) +cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" |
            tail -n1 | awk '{print "cov " $3 ", features " $5 ", corpus " $7}' || true)
        rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -n1 | awk '{print $2}' || true)
        if [[ $rc == 0 ]]; then
            echo "fuzz: $t ok: ${runs:-?} runs in ${SECONDS_EACH}s, ${cov:-no coverage line}, peak RSS ${rss:-?} MB"
            return 0
        fi
        echo "fuzz: $t FAILED (exit status $rc); what libFuzzer said, without stack frames:"
        grep -av -E '^(#[0-9]|[[:space:]]+([0-9]+:|at |#[0-9]))' "$log" |
            grep -a -A 30 -m 1 -E 'panicked at|ERROR: |SUMMARY: ' | cut -c1-2000 || true
        grep -a -E "^(artifact_prefix|Base64)" "$log" | cut -c1-2000 || true
        ls -1 "$FUZZ_DIR/artifacts/$t" 2>/dev/null | sed 's/^/fuzz: artifact: /' || true
        return 1
    }

    echo "fuzz: running ${#TARGETS[@]} targets for ${SECONDS_EACH}s each, $JOBS at a time"
    running=0
    for t in "${TARGETS[@]}"; do
        if ((running >= JOBS)); then
            wait -n || true
            running=$((running - 1))
        fi
        run_one "$t" &
        running=$((running + 1))
    done
    wait
    passed=0
    failed=0
    for t in "${TARGETS[@]}"; do
        if report "$t"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    echo "$passed passed, $failed failed"
    ((failed == 0))
}

main "$@"
exit
