#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for SECONDS, one after
# another (never two at once: the development machine has 2 cores), at
# nice 10. Before fuzzing a target it replays the kept regression inputs in
# regressions/<target>/. Prints one line per target: executions, exec/s,
# coverage and the result. Exits 1 when any target found something (the
# input is in artifacts/<target>/), 2 on a usage or build error.
#
#   fuzz/run-all.sh SECONDS [TARGET...]     # default: every target
#
# Seeds: corpus/<target>/ is created by `cargo run --example make_seeds`
# when corpus/segment_open/ does not exist yet. Runs keep growing corpus/.
set -u -o pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
seconds=$1
shift

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
export ASAN_OPTIONS=detect_odr_violation=0
bin_dir=target/x86_64-unknown-linux-gnu/release
log_dir=${FUZZ_LOG_DIR:-target/run-all-logs}
mkdir -p "$log_dir"

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "run-all: no fuzz targets found" >&2
    exit 2
fi

if [[ ! -d corpus/segment_open ]]; then
    echo "run-all: writing seeds (cargo run --example make_seeds)"
    nice -n 10 cargo run --quiet --example make_seeds >/dev/null || {
        echo "run-all: make_seeds failed" >&2
        exit 2
    }
fi

echo "run-all: building ${#targets[@]} targets (cargo fuzz build, release + ASan)"
nice -n 10 cargo fuzz build || {
    echo "run-all: build failed" >&2
    exit 2
}

# libFuzzer's final statistic `name`, from a run's log.
stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -1
}

printf '%-20s %8s %12s %9s %7s  %s\n' target seconds executions exec/s cov result
found=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$log_dir/$target.log"
    result="no finding"
    status=0
    if compgen -G "regressions/$target/*" >/dev/null; then
        nice -n 10 "$bin_dir/$target" "regressions/$target"/* >"$log.regressions" 2>&1 || {
            status=$?
            result="FINDING: a kept regression input fails again (see $log.regressions)"
        }
    fi
    if [[ $status -eq 0 ]]; then
        nice -n 10 "$bin_dir/$target" \
            -artifact_prefix="$PWD/artifacts/$target/" \
            -max_total_time="$seconds" -print_final_stats=1 \
            "corpus/$target" >"$log" 2>&1 || status=$?
        if [[ $status -ne 0 ]]; then
            artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
            result="FINDING (exit $status): ${artifact:-see $log}"
        fi
    fi
    [[ $status -ne 0 ]] && found=1
    runs=$(stat number_of_executed_units "$log")
    rate=$(stat average_exec_per_sec "$log")
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$log" | tail -1)
    printf '%-20s %8s %12s %9s %7s  %s\n' "$target" "$seconds" "${runs:--}" "${rate:--}" "${cov:--}" "$result"
done
exit $found
