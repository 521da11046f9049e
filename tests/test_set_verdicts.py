"""The multi-label head's metrics and gates on exact numbers (``harness.set_metrics``): scikit-learn's values, the
vectorised bootstrap statistics equal to them, thresholds compared exactly, non-finite logits never right, and the
thresholds file refused when it does not name the data's labels."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss

from harness.errors import ModelSourceError
from harness.gates import check_eval_loss
from harness.result import GateResult
from harness.set_metrics import (
    NO_SET,
    THRESHOLD_GRID,
    binary_cross_entropy,
    check_set_metric,
    check_set_uplift,
    counts,
    fit_thresholds,
    label_set_metrics,
    macro_f1_of,
    micro_f1_of,
    predicted_sets,
    read_thresholds,
    set_ids,
    stratified_holdout,
    write_thresholds,
)

NAMES = ["a", "b", "c", "d"]


def sample(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(NAMES))) < 0.3
    logits = rng.normal(size=truth.shape) + np.where(truth, 1.5, -1.5)
    return truth, logits


def test_metrics_are_scikit_learns_and_the_vectorised_statistics_equal_them() -> None:
    truth, logits = sample()
    found = label_set_metrics("validation", logits, [tuple(r) for r in truth.astype(int)], NAMES, [0.5] * 4)
    predicted = logits >= 0
    assert found.micro_f1 == pytest.approx(f1_score(truth, predicted, average="micro"))
    assert found.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert found.hamming_loss == pytest.approx(hamming_loss(truth, predicted))
    assert found.subset_accuracy == pytest.approx((truth == predicted).all(axis=1).mean())
    tp, fp, fn = counts(truth, predicted)
    assert float(micro_f1_of(tp, fp, fn)) == pytest.approx(found.micro_f1)
    assert float(macro_f1_of(tp, fp, fn)) == pytest.approx(found.macro_f1)
    for name in ("micro_f1", "macro_f1", "hamming_loss", "eval_loss", "subset_accuracy"):
        low, high = found.intervals[name].as_list()
        assert low <= getattr(found, name) <= high and low < high, name


def test_the_loss_is_torchs_binary_cross_entropy_with_logits() -> None:
    import torch

    truth, logits = sample(50)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(truth * 1.0))
    assert binary_cross_entropy(logits, truth).mean() == pytest.approx(float(expected), rel=1e-12)
    assert math.isfinite(binary_cross_entropy(np.array([[800.0, -800.0]]), np.array([[0, 1]])).item())  # stable


def test_a_label_is_predicted_exactly_where_its_sigmoid_reaches_its_threshold() -> None:
    thresholds = [0.5, 0.9, 0.1]
    at = np.log(np.array(thresholds) / (1 - np.array(thresholds)))
    logits = np.stack([at, np.nextafter(at, -np.inf)])
    assert predicted_sets(logits, thresholds).tolist() == [[True] * 3, [False] * 3]


def test_set_ids_name_sets_and_a_non_finite_row_matches_no_set() -> None:
    sets = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], dtype=bool)
    ids = set_ids(sets, np.array([[1.0, 0, 1], [0, 0, 0], [1, np.nan, 1]]))
    assert ids[0] == 5 and ids[1] == 0 and ids[2] == NO_SET
    wide = np.zeros((2, 70), dtype=bool)
    wide[0, 65] = True
    assert set_ids(wide)[0] != set_ids(wide)[1]  # beyond 62 labels: a digest still tells the sets apart


def test_non_finite_logits_are_wrong_on_every_label_and_never_pass() -> None:
    truth, logits = sample(40)
    logits[:, :] = np.nan
    found = label_set_metrics("validation", logits, [tuple(r) for r in truth.astype(int)], NAMES, [0.5] * 4)
    assert found.subset_accuracy == 0 and found.hamming_loss == 1 and found.micro_f1 == 0
    for which, bound in (("micro_f1", 0.01), ("subset_accuracy", 0.01), ("hamming_loss", 0.99)):
        assert not check_set_metric(found, which, bound).passed, which
    assert math.isnan(found.eval_loss) and not check_eval_loss(found, 100.0).passed  # type: ignore[arg-type]


def test_set_gates_decide_by_their_bar_and_name_the_weakest_labels() -> None:
    truth, logits = sample()
    found = label_set_metrics("validation", logits, [tuple(r) for r in truth.astype(int)], NAMES, [0.5] * 4)
    assert check_set_metric(found, "micro_f1", found.micro_f1).passed
    assert not check_set_metric(found, "micro_f1", found.micro_f1 + 1e-9).passed
    assert check_set_metric(found, "hamming_loss", found.hamming_loss).passed
    assert not check_set_metric(found, "hamming_loss", found.hamming_loss - 1e-9).passed
    assert "weakest labels by F1" in check_set_metric(found, "subset_accuracy", 0.1).details[0]


def test_uplift_is_micro_f1_gained_on_the_same_examples() -> None:
    truth, logits = sample()
    rows = [tuple(r) for r in truth.astype(int)]
    tuned = label_set_metrics("validation", logits, rows, NAMES, [0.5] * 4)
    base = label_set_metrics("validation", np.zeros_like(logits), rows, NAMES, [0.5] * 4)
    result = check_set_uplift(base, tuned, 0.1)
    assert result.value == pytest.approx(tuned.micro_f1 - base.micro_f1) and result.passed
    low, high = result.interval
    assert low <= result.value <= high
    assert not check_set_uplift(tuned, tuned, 0.01).passed  # no gain over itself


def test_a_thresholds_file_must_name_the_datas_labels_and_hold_probabilities(tmp_path) -> None:
    assert read_thresholds(tmp_path, NAMES, 0.4) == [0.4] * 4  # none saved: the profile's
    write_thresholds(tmp_path, NAMES, [0.5, 0.6, 0.7, 0.8])
    assert read_thresholds(tmp_path, NAMES, 0.4) == [0.5, 0.6, 0.7, 0.8]
    with pytest.raises(ModelSourceError, match=r"thresholds for labels \['a', 'b', 'c', 'd'\], but the data's"):
        read_thresholds(tmp_path, ["a", "b", "d", "c"], 0.5)
    for bad in (0.0, 1.0, float("nan")):
        (tmp_path / "thresholds.json").write_text(json.dumps({"labels": NAMES, "thresholds": [0.5, 0.5, 0.5, bad]}))
        with pytest.raises(ModelSourceError, match="is not strictly between 0 and 1"):
            read_thresholds(tmp_path, NAMES, 0.5)
    (tmp_path / "thresholds.json").write_text("[0.5]")
    with pytest.raises(ModelSourceError, match=r"expected \{\"labels\""):
        read_thresholds(tmp_path, NAMES, 0.5)


def test_fitted_thresholds_maximise_each_labels_f1_and_keep_the_default_without_positives() -> None:
    rng = np.random.default_rng(3)
    truth = np.zeros((400, 3), dtype=bool)
    truth[:40, 0] = True  # a rare label whose model is shy: its positives score about 0.3, its negatives 0.1
    truth[:200, 1] = True  # a common one, well separated around 0.5
    probabilities = np.where(truth, 0.3, 0.1) + rng.uniform(-0.04, 0.04, truth.shape)
    probabilities[:, 1] = np.where(truth[:, 1], 0.8, 0.2)
    logits = np.log(probabilities / (1 - probabilities))
    fitted = fit_thresholds(logits, truth, default=0.5)
    assert 0.15 <= fitted[0] <= 0.25  # between the shy label's negatives and positives: F1 1.0 instead of 0.0
    assert fitted[1] == 0.5  # every threshold between 0.2 and 0.8 is perfect: the one nearest the default
    assert fitted[2] == 0.5  # no positive held out: nothing to fit
    assert set(fitted) <= {*THRESHOLD_GRID, 0.5}


def test_the_held_out_slice_keeps_each_labels_share_and_pools_rare_sets() -> None:
    labels = [(1, 0, 0)] * 60 + [(0, 1, 0)] * 30 + [(1, 1, 0)] * 9 + [(0, 0, 1)]
    kept, held = stratified_holdout(labels, 0.2, seed=0)
    assert sorted(kept + held) == list(range(len(labels))) and len(held) == 20
    first = sum(labels[i][0] for i in held)  # 69 of 100 rows hold label 0: about 13.8 of the 20 held out
    assert abs(first - 13.8) <= 1.5, first
    assert stratified_holdout(labels, 0.2, seed=0) == (kept, held)  # fixed by the seed


# ---------------------------------------------------------------------------------------------- against a baseline


def _against_baseline(thresholds: list[float], order: slice = slice(None)):
    """(baseline record of the 200 sample texts at 0.5, the same logits decided at ``thresholds`` as the candidate,
    in ``order``, plus one text the baseline never saw, the candidate's ids)."""
    from harness.baseline import _per_example, example_ids

    truth, logits = sample()
    texts = [f"text {i}" for i in range(len(truth))]
    base = label_set_metrics("validation", logits, truth.tolist(), NAMES, [0.5] * 4)
    record = {"examples": {"validation": _per_example(texts, base)}}
    extra_truth, extra_logits = np.ones((1, 4), dtype=bool), np.full((1, 4), -3.0)
    now = label_set_metrics("validation", np.vstack([logits[order], extra_logits]),
                            np.vstack([truth[order], extra_truth]).tolist(), NAMES, thresholds)  # fmt: skip
    return record, base, now, example_ids([*texts[order], "never seen"])


def test_a_baseline_records_whole_sets_their_correctness_and_their_loss() -> None:
    from harness.baseline import _per_example

    truth, logits = sample(6)
    metrics = label_set_metrics("validation", logits, truth.tolist(), NAMES, [0.5] * 4)
    record = _per_example([f"t{i}" for i in range(6)], metrics)
    assert record["label"] == truth.astype(int).tolist() and record["prediction"] == (logits >= 0).astype(int).tolist()
    assert {type(v) for key in ("label", "prediction") for row in record[key] for v in row} == {int}  # 0/1, not 0.0
    assert record["correct"] == (truth == (logits >= 0)).all(axis=1).astype(int).tolist()
    assert {type(v) for v in record["correct"]} == {int}
    assert record["loss"] == [round(float(x), 7) for x in binary_cross_entropy(logits, truth)]
    assert "confidence" not in record  # a set has no one confidence


def test_set_comparisons_with_a_baseline_are_paired_on_the_shared_texts_in_any_order() -> None:
    from harness.baseline import compare_accuracy, compare_macro_f1, compare_micro_f1
    from harness.profile import BaselineSection

    cfg = BaselineSection(micro_f1_drop_abs=0.02, macro_f1_drop_abs=0.02, accuracy_drop_abs=0.02)
    record, base, strict, ids = _against_baseline([0.95] * 4, slice(None, None, -1))
    shared = slice(0, 200)  # the candidate's unseen last text is left out of every comparison
    truth, now = strict.labels[shared], strict.predictions[shared]
    micro = compare_micro_f1(record, strict, ids, cfg)
    now_f1 = f1_score(truth, now, average="micro")
    assert micro.value == pytest.approx(base.micro_f1 - now_f1, abs=1e-12)
    assert micro == GateResult(
        gate="baseline_micro_f1", metric="micro-F1 drop vs baseline", split="validation", value=micro.value,
        threshold=0.02, op="<=", n=200, mode="paired", p_value=1 / 2001, alpha=0.05,
        details=[f"baseline micro-F1 {base.micro_f1:.4f} -> candidate {now_f1:.4f} on 200 shared examples",
                 "paired bootstrap (one-sided, candidate worse) p = 0.0005 (alpha 0.05)",
                 "rule: fail only when the drop exceeds the allowance AND p < alpha"],
    )  # fmt: skip
    assert micro.value > 0.1 and not micro.passed
    assert compare_micro_f1(record, strict, ids, BaselineSection()).threshold == 0.0  # unset: no drop allowed
    macro = compare_macro_f1(record, strict, ids, cfg)
    assert (
        macro.gate == "baseline_macro_f1" and macro.threshold == 0.02 and macro.details[0].startswith("baseline macro")
    )
    assert macro.value == pytest.approx(base.macro_f1 - f1_score(truth, now, average="macro", zero_division=0))
    assert not macro.passed
    subset = compare_accuracy(record, strict, ids, cfg)
    right_before, right_now = base.correct[::-1], (truth == now).all(axis=1)
    assert subset.metric == "subset accuracy drop vs baseline" and subset.details[0].startswith("baseline subset")
    assert subset.value == (int(right_before.sum()) - int(right_now.sum())) / 200 and not subset.passed
    record, _, same, ids = _against_baseline([0.5] * 4)
    for gate in (compare_micro_f1(record, same, ids, cfg), compare_macro_f1(record, same, ids, cfg)):
        assert gate.value == 0.0 and gate.p_value == 1.0 and gate.passed  # no resample drops: p is 1
    _, _, strict, ids = _against_baseline([0.95] * 4)
    allowed = compare_micro_f1(record, strict, ids, BaselineSection(micro_f1_drop_abs=micro.value + 1e-9))
    assert allowed.value == pytest.approx(micro.value, abs=1e-12)  # the same texts, in the candidate's own order
    assert allowed.p_value < 0.05 and allowed.passed  # significant, but within the allowance


def test_hamming_loss_and_a_labels_recall_compare_with_a_baseline_paired() -> None:
    """Raised thresholds lose labels: the Hamming loss rises by scikit-learn's difference and each label's recall
    (over the texts whose true set holds it) drops; equal thresholds move neither; an allowance at the rise passes."""
    from harness.baseline import compare_hamming_loss, compare_recall
    from harness.profile import BaselineSection

    cfg = BaselineSection(hamming_loss_rise_abs=0.01)
    record, base, strict, ids = _against_baseline([0.95] * 4, slice(None, None, -1))
    truth, now = strict.labels[:200], strict.predictions[:200]
    rise = compare_hamming_loss(record, strict, ids, cfg)
    assert rise.value == pytest.approx(hamming_loss(truth, now) - base.hamming_loss, abs=1e-12)
    assert rise == GateResult(
        gate="baseline_hamming_loss", metric="Hamming loss rise vs baseline", split="validation", value=rise.value,
        threshold=0.01, op="<=", n=200, mode="paired", p_value=1 / 2001, alpha=0.05,
        details=[f"baseline Hamming loss {base.hamming_loss:.4f} -> candidate {hamming_loss(truth, now):.4f} on "
                 "200 shared examples", "paired bootstrap (one-sided, candidate worse) p = 0.0005 (alpha 0.05)",
                 "rule: fail only when the drop exceeds the allowance AND p < alpha"],
    )  # fmt: skip
    assert rise.value > 0.05 and not rise.passed
    assert compare_hamming_loss(record, strict, ids, BaselineSection()).threshold == 0.0  # unset: no rise allowed
    assert compare_hamming_loss(record, strict, ids, BaselineSection(hamming_loss_rise_abs=rise.value + 1e-9)).passed
    base_truth = base.labels[::-1]
    for k, name in enumerate(NAMES):
        holds = base_truth[:, k]
        before, after = base.predictions[::-1][holds, k].mean(), now[truth[:, k], k].mean()
        recall = compare_recall(record, strict, ids, k, 0.02, cfg)
        assert (recall.gate, recall.n) == (f"baseline_recall:{name}", int(holds.sum()))
        assert recall.value == pytest.approx(before - after, abs=1e-12)
        assert recall.details[0].startswith(f"baseline recall of {name} {before:.4f} -> candidate {after:.4f}")
        assert recall.value > 0.02 and not recall.passed, (name, recall)
    record, _, same, ids = _against_baseline([0.5] * 4)
    for gate in (compare_hamming_loss(record, same, ids, cfg), compare_recall(record, same, ids, 0, 0.0, cfg)):
        assert gate.value == 0.0 and gate.p_value == 1.0 and gate.passed
    _, _, looser, ids = _against_baseline([0.05] * 4)  # more labels said yes: recall can only rise
    assert all(compare_recall(record, looser, ids, k, 0.0, cfg).value <= 0 for k in range(4))


def test_flips_of_sets_name_their_labels_and_carry_no_confidence() -> None:
    from harness.baseline import flipped_examples

    record, base, strict, _ = _against_baseline([0.95] * 4)
    texts = [f"text {i}" for i in range(200)] + ["never seen"]
    flips = flipped_examples(record, strict, texts, NAMES)
    lost = np.flatnonzero(base.correct & ~strict.correct[:200])
    gained = np.flatnonzero(~base.correct & strict.correct[:200])
    assert [f["example"] for f in flips] == sorted([*lost, *gained]) and len(lost) > 10
    first = next(f for f in flips if f["example"] == lost[0])
    named = ", ".join(n for n, on in zip(NAMES, strict.labels[lost[0]], strict=True) if on) or "(none)"
    assert first["flip"] == "right to wrong" and first["label"] == named
    assert first["baseline"] == {"prediction": named, "confidence": None}
    assert first["candidate"]["confidence"] is None
    empty = [f for f in flips if f["candidate"]["prediction"] == "(none)"]
    assert all(not strict.predictions[f["example"]].any() for f in empty)


def test_set_comparisons_draw_their_resamples_from_the_seed() -> None:
    """A small drop (thresholds 0.5 -> 0.6) whose p-value is neither 1 nor its floor: each seed gives its own,
    the same seed the same, for micro- and macro-F1 and the Hamming loss alike."""
    from harness.baseline import compare_hamming_loss, compare_macro_f1, compare_micro_f1
    from harness.profile import BaselineSection

    record, _, nearer, ids = _against_baseline([0.6] * 4)
    cfg = BaselineSection()
    for compare in (compare_micro_f1, compare_macro_f1, compare_hamming_loss):
        p0, p3 = compare(record, nearer, ids, cfg).p_value, compare(record, nearer, ids, cfg, seed=3).p_value
        assert 1 / 2001 < p0 < 1 and p0 != p3, (compare, p0, p3)
        assert compare(record, nearer, ids, cfg, seed=3).p_value == p3
        assert compare(record, nearer, ids, cfg, seed=0).p_value == p0  # the default seed is 0
