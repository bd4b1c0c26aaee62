#!/usr/bin/env bash
# Every test: one pytest process per test directory (tests/unit, with tests/parity and
# client/tests beside it; tests/infrastructure, tests/local, tests/functional, tests/faults,
# tests/e2e), each
# found by its test_*.py files under tests/ and client/tests/ so none can be missed.
# One process per directory, not one for all: the functional layer keeps a whole moto
# account in memory for its session, and every end-to-end stack started after it in the
# same interpreter set up ~40 % slower (a full run took 838 s; the same tests by directory,
# 633 s). Every directory runs even after a failure; the exit status is the first non-zero
# one, and "no tests collected" (pytest's 5) counts as a failure.
# tests/unit runs once, under branch coverage of functions/assay_service: the report is
# printed and the run fails under the floor ([tool.coverage.report] fail_under in
# pyproject.toml, the one the on-demand `make coverage` uses). The floor holds for the whole
# layer, so it is applied only when no pytest arguments are given. Its wall_clock tests,
# skipped under the tracer, then run in a plain pytest process of their own.
# Usage: tools/run_tests.sh [pytest args…]   (PYTHON overrides the interpreter; TEST_DIRS,
# space-separated, runs only those directories, in that order)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
order=(tests/unit tests/infrastructure tests/local client/tests tests/parity tests/functional tests/faults tests/e2e)
mapfile -t found < <(find tests client/tests -name 'test_*.py' -printf '%h\n' | sort -u)
dirs=()
for dir in "${order[@]}"; do [[ " ${found[*]} " == *" $dir "* ]] && dirs+=("$dir"); done
for dir in "${found[@]}"; do [[ " ${dirs[*]} " == *" $dir "* ]] || dirs+=("$dir"); done
if [[ -n ${TEST_DIRS:-} ]]; then read -ra dirs <<<"$TEST_DIRS"; fi

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
log=$work/log

unit_layer() {  # tests/unit under coverage, the floor, then its wall-clock tests without a tracer
  export COVERAGE_FILE=$work/coverage  # a subshell (the pipe to tee): it stays here
  "$PYTHON" -m coverage run -m pytest -p no:cacheprovider --durations=5 tests/unit "$@"
  local code=$? floor=()
  [[ $# -gt 0 ]] && floor=(--fail-under=0)  # a filtered run measures a part of the layer
  "$PYTHON" -m coverage report "${floor[@]}"
  local report=$?
  echo "--- tests/unit: its wall_clock tests (skipped under the tracer), without one"
  "$PYTHON" -m pytest -p no:cacheprovider tests/unit "$@" -m wall_clock
  local clock=$?
  if [[ $clock -eq 5 ]]; then  # with arguments, a filter may have deselected them
    [[ $# -gt 0 ]] && clock=0 || { echo "no wall_clock test was collected in tests/unit" >&2; clock=1; }
  fi
  for next in "$report" "$clock"; do [[ $code -eq 0 ]] && code=$next; done
  return "$code"
}

status=0; summary=()
record() {  # record DIR CODE SECONDS
  local code=$2
  if [[ $code -eq 5 ]]; then echo "no tests were collected in $1" >&2; code=1; fi
  [[ $code -ne 0 && $status -eq 0 ]] && status=$code
  summary+=("$(printf '%-22s exit %d  %4d s' "$1" "$code" "$3")")
}
run_dir() {  # run_dir DIR [pytest args…]: its output on stdout, its exit status
  local dir=$1; shift
  if [[ $dir == tests/unit ]]; then unit_layer "$@"; else "$PYTHON" -m pytest -p no:cacheprovider --durations=5 "$dir" "$@"; fi
}

# The parity and client tests are single-process and CPU-bound like the unit layer, and
# touch no shared state: on this 2-core machine they run beside it, each on its own core,
# and end before the unit layer's wall-clock test starts. Their output follows the unit
# layer's. Every other directory runs alone (the stacks of functional and e2e tests use both
# cores, and some of their tests time workers).
beside=()
if [[ " ${dirs[*]} " == *" tests/unit "* ]]; then
  for dir in tests/parity client/tests; do [[ " ${dirs[*]} " == *" $dir "* ]] && beside+=("$dir"); done
fi
lane_pid=""
if [[ ${#beside[@]} -gt 0 ]]; then
  (
    for dir in "${beside[@]}"; do
      start=$SECONDS
      run_dir "$dir" "$@" >"$work/${dir//\//_}.out" 2>&1
      echo "$? $((SECONDS - start))" >"$work/${dir//\//_}.status"
    done
  ) &
  lane_pid=$!
fi
for dir in "${dirs[@]}"; do
  [[ " ${beside[*]} " == *" $dir "* ]] && continue
  echo "=== $dir"
  start=$SECONDS
  run_dir "$dir" "$@" 2>&1 | tee -a "$log"
  record "$dir" "${PIPESTATUS[0]}" $((SECONDS - start))
  if [[ $dir == tests/unit && -n $lane_pid ]]; then
    wait "$lane_pid"
    for other in "${beside[@]}"; do
      echo "=== $other (beside tests/unit)"
      tee -a "$log" <"$work/${other//\//_}.out"
      read -r code took <"$work/${other//\//_}.status"
      record "$other" "$code" "$took"
    done
  fi
done
echo "=== summary"
printf '%s\n' "${summary[@]}"
grep -E '^(FAILED|ERROR) ' "$log" || true
exit $status
