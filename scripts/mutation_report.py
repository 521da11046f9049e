"""Scope and score of the mutation run (scripts/mutation.sh runs it).

``globs``: the mutmut mutant names in scope, one per line (the verdict logic; the pure functions of
baseline.py and onnx_perf.py; the ONNX checks, parity and behaviour properties, on a real tiny model; the
tokenizer properties and the normaliser models behind them, on real tokenizers of each family; the slice and
expectation-file verdicts on plain data; temperature scaling on closed forms and small models built in memory).
``score``: killed / total per module from ``mutmut results --all true``, the survivors, and whether each is
justified in docs/mutation-survivors.md. Exit 1 if a module is below 90 % or a survivor is not justified.
``hand``: mutants mutmut cannot make (it skips decorated functions, e.g. the ``decisive`` and ``verdict``
properties that decide and show every verdict, ``PerturbationResult.fail_rate``, the context manager that
restores a model's mode and ``Normaliser.lowercases``; and it cannot judge code that runs once at import, as
GPT-2's byte table in ``harness/tokenizers/normalisers.py``), applied to a copy of the project and run against the
same tests.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIMUM = 0.9
SURVIVORS_DOC = ROOT / "docs" / "mutation-survivors.md"
NORMALISERS = "harness/tokenizers/normalisers.py"
TESTS = [  # the same selection as [tool.mutmut] pytest_add_cli_args_test_selection
    "tests/test_verdicts.py",
    "tests/test_stats.py",
    "tests/test_bundle_verdicts.py",
    "tests/test_behaviour_verdicts.py",
    "tests/test_tokenization_verdicts.py",
    "tests/test_non_finite.py",
    "tests/test_slice_verdicts.py",
    "tests/test_expectation_verdicts.py",
    "tests/test_temperature_verdicts.py",
    "tests/test_metric_gate_verdicts.py",
    "tests/test_key_functions.py",
    "tests/test_pairs.py",
    "tests/test_score_verdicts.py",
    "tests/test_set_verdicts.py",
    "tests/test_registry.py::test_the_result_decides_its_own_verdict",
    "tests/test_registry.py::test_a_result_cannot_be_given_a_verdict",
    "--deselect=tests/test_stats.py::test_vectorised_macro_f1_equals_scikit_learn_and_gives_the_same_interval",
]

# module -> functions in scope (None: all of it; "Class.method" for a method)
SCOPE: dict[str, list[str] | None] = {
    "harness/result.py": None,
    "harness/scores.py": None,
    "harness/stats.py": None,
    "harness/gates.py": None,
    "harness/baseline.py": [
        "_aligned",
        "compare_accuracy",
        "compare_loss",
        "compare_macro_f1",
        "compare_recall",
        "compare_micro_f1",
        "_set_f1_gate",
        "compare_pearson",
        "compare_spearman",
        "_correlation_gate",
        "compare_hamming_loss",
        "_per_example",
        "_bootstrap_details",
        "_paired_gate",
    ],
    "harness/onnx/perf.py": ["compare_int8", "compare_int8_scores", "int8_gates"],
    "harness/onnx/parity.py": [
        "parity_gates",
        "compare_on_texts",
        "dropped_inputs",
        "_run_both",
        "_worst",
        "diff_histogram",
        "check_same_outputs",
    ],
    "harness/onnx/checks.py": None,
    "harness/behaviour.py": None,
    # the properties and what decides max_length; not general_english (the reference sentences of a reported,
    # ungated vocabulary figure)
    "harness/tokenizers/properties.py": [
        "PropertyViolation.__init__",
        "rule_for",
        "normaliser_for",
        "_spec",
        "Frame.from_tokenizer",
        "_frame",
        "special_token_strings",
        "check_round_trip",
        "check_truncation",
        "check_pair_truncation",
        "check_padding",
        "check_batch_equals_single",
        "check_offsets",
        "_without_whitespace",
        "check_reload_identical",
        "reload_tokenizer",
        "check_encodes_or_fails_clearly",
        "vocabulary_fit",
        "unknown_words",
        "token_lengths",
        "choose_max_length",
        "max_length_choice",
    ],
    # all but _byte_decoder, which runs once at import, before mutmut switches a mutant on (hand mutants below)
    "harness/tokenizers/normalisers.py": [
        "Normaliser.from_spec",
        "Normaliser.apply",
        "Normaliser.__str__",
        "_steps",
        "_regex",
        "_strip",
        "_bert",
        "_control",
        "Rebuild.from_spec",
        "Rebuild.expected",
        "Rebuild.matches",
        "Rebuild._spells",
        "Rebuild.token_bytes",
        "Rebuild.span_bytes",
        "Rebuild.__str__",
        "_flatten",
        "_replacements",
        "_unigram_unk",
        "_split_words",
        "_word_character",
        "_squeeze_split",
        "_squeeze",
        "_with_wildcards",
    ],
    "harness/slices.py": None,
    # the verdict of an expectation file and what decides each case, and how a row becomes cases; not the file
    # readers (_records, _check_columns, read_file, load_expectations), which tests/test_expectations.py covers
    "harness/expectations.py": [
        "check",
        "_failure",
        "_label",
        "_margin",
        "_cases",
        "_required",
        "_rewrites",
        "_pair_rewrite",
        "_two_texts",
        "_text",
        "_short",
    ],
    "harness/temperature.py": None,
    # the reuse keys: what a stored measurement or a passed property is keyed by (a dropped input is a false pass)
    "harness/digests.py": None,
    "harness/environment.py": None,
    "harness/reuse.py": None,
    "harness/property_keys.py": None,
    "harness/training/job.py": ["key_inputs", "_precision_key", "_training_key", "cache_key"],
}

# (file, text, replacement): one mutant each, in what mutmut skips
HAND_MUTANTS = [
    ("harness/result.py", 'if self.mode == "confident" and self.interval:\n            return self.interval[0]',
     'if self.mode != "confident" and self.interval:\n            return self.interval[0]'),
    ("harness/result.py", 'if self.mode == "confident" and self.interval:\n            return self.interval[0]',
     'if self.mode == "confident" or self.interval:\n            return self.interval[0]'),
    ("harness/result.py", 'return self.interval[0] if self.op == ">=" else self.interval[1]',
     'return self.interval[1] if self.op == ">=" else self.interval[0]'),
    ("harness/result.py", 'return self.interval[0] if self.op == ">=" else self.interval[1]',
     'return self.interval[0] if self.op != ">=" else self.interval[1]'),
    ("harness/result.py", 'return self.interval[0] if self.op == ">=" else self.interval[1]',
     'return self.interval[0] if self.op == ">=" else self.interval[0]'),
    ("harness/result.py", "        return self.value\n\n    def summary",
     "        return self.threshold\n\n    def summary"),
    ("harness/result.py", 'return "pass" if self.passed else "FAIL"', 'return "FAIL" if self.passed else "pass"'),
    ("harness/result.py", 'return "pass" if self.passed else "FAIL"', 'return "pass" if self.passed else "fail"'),
    ("harness/behaviour.py", "return self.changed / self.n if self.n else 0.0",
     "return self.changed / self.n if self.n else 1.0"),
    ("harness/behaviour.py", "return self.changed / self.n if self.n else 0.0",
     "return (self.n - self.changed) / self.n if self.n else 0.0"),
    ("harness/behaviour.py", "            module.training = training", "            module.training = False"),
    ("harness/behaviour.py", 'model.modules()] if hasattr(model, "modules") else []',
     'model.modules()] if not hasattr(model, "modules") else []'),
    (NORMALISERS, 'return any(name == "Lowercase" or name.startswith("BertNormalizer(lowercase")',
     'return all(name == "Lowercase" or name.startswith("BertNormalizer(lowercase")'),
    (NORMALISERS, 'return any(name == "Lowercase" or name.startswith("BertNormalizer(lowercase")',
     'return any(name == "Lowercase" and name.startswith("BertNormalizer(lowercase")'),
    (NORMALISERS, 'return any(name == "Lowercase" or name.startswith("BertNormalizer(lowercase")',
     'return any(name == "Lowercase" or name.startswith("BertNormalizer(")'),
    ("harness/tokenizers/normalisers.py", '*range(ord("!"), ord("~") + 1),', '*range(ord("!"), ord("~")),'),
    ("harness/tokenizers/normalisers.py", '*range(ord("¡"), ord("¬") + 1),', '*range(ord("¡"), ord("¬")),'),
    ("harness/tokenizers/normalisers.py", "            shift += 1", "            shift += 2"),
    ("harness/tokenizers/normalisers.py", "chars[chr(256 + shift)] = byte", "chars[chr(255 + shift)] = byte"),
]  # fmt: skip
# the tests a hand mutant of a file is run against (default: TESTS)
HAND_TESTS = {
    "harness/behaviour.py": ["tests/test_behaviour_verdicts.py", "tests/test_verdicts.py"],
    "harness/tokenizers/normalisers.py": ["tests/test_tokenization_verdicts.py"],
}


def function_globs(path: str, functions: list[str]) -> list[str]:
    """mutmut's names of ``functions`` in ``path``: ``harness.stats.x_wilson__mutmut_*``,
    ``harness.result.xǁGateResultǁ_decide__mutmut_*`` (a method is ``Class.method``)."""
    module = path.removesuffix(".py").replace("/", ".")
    return [f"{module}.x{'ǁ' + f.replace('.', 'ǁ') if '.' in f else '_' + f}__mutmut_*" for f in functions]


def globs_of(path: str) -> list[str]:
    """The mutants in scope of ``path``: all of the module's, or those of its listed functions."""
    functions = SCOPE[path]
    return [f"{path.removesuffix('.py').replace('/', '.')}.*"] if functions is None else function_globs(path, functions)


def module_of(mutant: str) -> str | None:
    return next((p for p in SCOPE if any(fnmatch.fnmatchcase(mutant, g) for g in globs_of(p))), None)


def score(results: str) -> int:
    """Print killed / total per module from ``mutmut results --all true``; 1 if a gate of the run fails."""
    justified = set(re.findall(r"harness\.[\w.ǁ]+__mutmut_\d+", SURVIVORS_DOC.read_text(encoding="utf-8")))
    by_module: dict[str, list[tuple[str, str]]] = {path: [] for path in SCOPE}
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and (path := module_of(name)):
            by_module[path].append((name, status))
    failed = False
    print(f"{'module':24} {'killed/total':>12} {'score':>7}")
    for path, mutants in by_module.items():
        killed = sum(status in ("killed", "timeout") for _, status in mutants)
        total = len(mutants)
        share = killed / total if total else 0.0
        failed |= share < MINIMUM
        scope = "" if SCOPE[path] is None else f"  ({', '.join(SCOPE[path] or [])})"
        print(f"{path:24} {f'{killed}/{total}':>12} {share:7.1%}{'  < 90 %' if share < MINIMUM else ''}{scope}")
        for name, status in mutants:
            if status not in ("killed", "timeout"):
                known = name in justified
                failed |= not known
                note = "justified in docs/mutation-survivors.md" if known else "NOT JUSTIFIED: kill it or justify it"
                print(f"    {name}: {status} ({note})")
    everything = [status for mutants in by_module.values() for _, status in mutants]
    killed = sum(status in ("killed", "timeout") for status in everything)
    print(f"{'all':24} {f'{killed}/{len(everything)}':>12} {killed / max(len(everything), 1):7.1%}")
    return int(failed)


def hand(python: str, only: list[str] | None = None) -> int:
    """Apply each hand-written mutant (of the files ``only``, default all) to a copy of the project and run the
    tests; writes killed / total per file to mutants/hand.json; 1 if one survives."""
    chosen = [m for m in HAND_MUTANTS if only is None or m[0] in only]
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="hand-mutants-") as tmp:
        copy = Path(tmp)
        shutil.copytree(ROOT / "harness", copy / "harness", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "fixtures", copy / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "conftest.py"):
            shutil.copy2(ROOT / name, copy / name)
        # the tiny model and bundle the mutmut run exported (a verified cache entry), else exported once here
        cache = ROOT / "mutants" / ".pytest_cache" if (ROOT / "mutants" / ".pytest_cache").is_dir() else copy / ".cache"

        def run_tests(tests: list[str]) -> int:  # python -m puts the copy first on sys.path: its harness is imported
            command = [python, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-o", f"cache_dir={cache}", *tests]
            return subprocess.run(command, cwd=copy, capture_output=True, check=False).returncode

        if run_tests(TESTS) != 0:
            print("hand mutants: the unmutated copy fails its tests")
            return 1
        for number, (path, text, replacement) in enumerate(HAND_MUTANTS, 1):
            if (path, text, replacement) not in chosen:
                continue
            source = (copy / path).read_text(encoding="utf-8")
            assert source.count(text) == 1, f"hand mutant {number}: {text!r} not found once in {path}"
            (copy / path).write_text(source.replace(text, replacement), encoding="utf-8")
            code = run_tests(HAND_TESTS.get(path, TESTS))
            (copy / path).write_text(source, encoding="utf-8")
            status = "killed" if code == 1 else f"SURVIVED (pytest exit {code})"
            counts.setdefault(path, {"killed": 0, "total": 0})
            counts[path]["killed"] += code == 1
            counts[path]["total"] += 1
            print(f"    hand mutant {number} in {path}: {replacement.strip().splitlines()[0]!r}: {status}")
    (ROOT / "mutants").mkdir(exist_ok=True)
    (ROOT / "mutants" / "hand.json").write_text(json.dumps(counts, indent=1), encoding="utf-8")
    killed = sum(c["killed"] for c in counts.values())
    print(f"hand mutants (decorated functions mutmut skips): {killed}/{len(chosen)}")
    return int(killed < len(chosen))


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "globs":
        print("\n".join(g for path in SCOPE for g in globs_of(path)))
    elif command == "score":
        sys.exit(score(sys.stdin.read()))
    elif command == "hand":
        sys.exit(hand(sys.executable))
    else:
        sys.exit(f"usage: {sys.argv[0]} globs | score < results | hand")
