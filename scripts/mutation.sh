#!/usr/bin/env bash
# Mutation testing of the modules that decide verdicts, from a clean state (see README, "Mutation testing").
# Prints killed / total per module and every survivor; exits 1 if a module scores below 90 %, a survivor is not
# justified in docs/mutation-survivors.md, or a hand-written mutant of what mutmut skips survives. Then writes
# docs/mutation-record.json (per function: source digest, killed / total, survivors) and the README's table from
# it; commit both. .ci/run re-runs only what changed since (scripts/mutation_record.py check).
#   PYTHON=/path/to/venv/bin/python JOBS=2 scripts/mutation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
JOBS=${JOBS:-2}
# one thread each: the workers are forked from a process that already ran torch, and an OpenMP pool does not
# survive a fork (the child hangs in its first parallel region); the ONNX Runtime sessions are made after it
export OMP_NUM_THREADS=1
mapfile -t GLOBS < <("$PYTHON" scripts/mutation_report.py globs)

rm -rf mutants
mkdir mutants
start=$SECONDS
# mutmut copies harness/ and tests/ into mutants/, puts mutants/ first on sys.path and checks that a forced
# failure of the mutated copy fails the tests, so the mutated code is what the tests import.
if ! nice "$PYTHON" -m mutmut run --max-children "$JOBS" "${GLOBS[@]}" >mutants/run.log 2>&1; then
    tail -n 40 mutants/run.log
    echo "mutmut run failed (log: mutants/run.log)"
    exit 1
fi
echo "mutmut run: $((SECONDS - start)) s with $JOBS workers (log: mutants/run.log)"
status=0
"$PYTHON" -m mutmut results --all true 2>/dev/null | "$PYTHON" scripts/mutation_report.py score || status=1
start=$SECONDS
nice "$PYTHON" scripts/mutation_report.py hand || status=1
echo "hand mutants: $((SECONDS - start)) s"
"$PYTHON" -m mutmut results --all true 2>/dev/null | "$PYTHON" scripts/mutation_record.py write
echo "wrote docs/mutation-record.json and the README's mutation table"
exit $status
