#!/usr/bin/env bash
# The fuzz properties (docs/reliability.md, "Fuzzing") with many cases, built in release mode.
#
#   scripts/fuzz.sh [CASES] [TARGET[=CASES]...]
#
# TARGET: request (5 properties), record (3), letter (2), config (2); default all four. CASES is
# the number of generated cases of each property of a target (PROPTEST_CASES). Defaults: 1000000
# for request, record and letter, 100000 for config (a load costs ~2.5 ms): 10.2 million cases in
# all, about 45 minutes on 2 cores. A lone number sets every target's; `config=500000` one.
# Prints each property's line (cases, seconds, outcome tally), then per target the cases and the
# wall time, and the total; the whole output is kept in target/fuzz/. Run it niced on a shared
# machine: `nice -n 15 scripts/fuzz.sh`. A failing property prints its minimal input, stores
# its seed in the target's .proptest-regressions file (commit it) and makes the script fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A cases=([request]=1000000 [record]=1000000 [letter]=1000000 [config]=100000)
targets=()
for arg in "$@"; do
    case "$arg" in
        *=*[!0-9]* | *= | =*) echo "bad argument $arg" >&2; exit 2 ;;
        *=*) targets+=("${arg%%=*}"); cases[${arg%%=*}]="${arg#*=}" ;;
        *[!0-9]*) targets+=("$arg") ;;
        *) for t in "${!cases[@]}"; do cases[$t]=$arg; done ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(request record letter config)

# target -> test binary (cargo target name), the package dir it runs in, name filter
declare -A binary=([request]=fuzz_request [config]=fuzz_config [record]=sked_core [letter]=sked_replayer)
declare -A dir=([request]=crates/core [config]=crates/core [record]=crates/core [letter]=services/replayer)
declare -A filter=([request]="" [config]="" [record]="store::record_fuzz::" [letter]="letter_fuzz::")
for t in "${targets[@]}"; do
    [ -n "${binary[$t]+x}" ] || { echo "unknown target $t (request, record, letter, config)" >&2; exit 2; }
done

mkdir -p target/fuzz
log="target/fuzz/$(date -u +%Y%m%dT%H%M%SZ).log"
{
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates services Cargo.toml Cargo.lock || echo ' (with local changes)')"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB"
    for t in "${targets[@]}"; do echo "cases per property of $t: ${cases[$t]}"; done
} | tee "$log"

# Build once, both packages together (one feature set, so nothing is built twice), then run
# the test binaries themselves, as cargo test would, so that the times are the properties'.
declare -A exe=()
while IFS=' ' read -r name path; do
    exe[$name]=$path
done < <(cargo test --release --locked -p sked-core -p sked-replayer --no-run \
    --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
')

total=0
summary=()
for t in "${targets[@]}"; do
    out="target/fuzz/$t.out"
    start=$(date +%s.%N)
    status=0
    bin="${exe[${binary[$t]}]:-}"
    [ -n "$bin" ] || { echo "no test binary ${binary[$t]} (build failed?)" >&2; exit 1; }
    # shellcheck disable=SC2086
    (cd "${dir[$t]}" && PROPTEST_CASES="${cases[$t]}" "$bin" ${filter[$t]} --nocapture) >"$out" 2>&1 ||
        status=$?
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    grep -E '^fuzz |^test result|panicked|minimal failing input' "$out" | tee -a "$log"
    n=$(awk '/^fuzz [^:]*: [0-9]+ cases/ { n += $3 } END { print n + 0 }' "$out")
    total=$((total + n))
    line=$(printf '%-8s %12d cases %9s s' "$t" "$n" "$took")
    summary+=("$line")
    if [ "$status" -ne 0 ]; then
        echo "$t: FAILED (exit $status), full output in $out" | tee -a "$log"
        summary+=("$t FAILED")
    fi
done

{
    echo "--- per target"
    printf '%s\n' "${summary[@]}"
    echo "total: $total cases"
    echo "log: $log"
} | tee -a "$log"
! printf '%s\n' "${summary[@]}" | grep -q FAILED
