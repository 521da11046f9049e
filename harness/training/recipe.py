"""The training recipe: splits tokenized once per content, ``TrainingArguments`` from the profile, the ``Trainer``
with early stopping, temperature calibration, and the entry written beside the model."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from harness.cache import FileCache
from harness.device import Device, training_precision
from harness.digests import content_key, texts_digest
from harness.inputs import Example, segments
from harness.models import load_classifier, load_tokenizer, model_digest
from harness.profile import Profile, TrainingSection
from harness.training.job import Job, Progress, world


def train_entry(job: Job, staging: Path) -> dict[str, Any]:
    """Fine-tune into ``staging``; return the entry record. Rank 0 leaves the model and tokenizer in
    ``staging/model`` (the checkpoints removed); under DDP every rank trains, the others write nothing."""
    _check_global_batch(job.profile)
    tokenizer, train_set, eval_set, held_out = _tokenized_splits(job)
    steps_per_epoch = max(1, -(-len(train_set) // job.cfg.batch_size))
    precision = training_precision(job.cfg.precision, job.device)
    args = _training_arguments(job.cfg, job.device, staging / "checkpoints", steps_per_epoch, precision)
    trainer, collator = _build_trainer(job, args, tokenizer, train_set, eval_set)
    job.progress(
        f"harness: fine-tuning {job.source.name} on {len(train_set)} examples for up to {job.cfg.epochs} epochs "
        f"({steps_per_epoch} steps each) on {job.device.kind} ({job.device.name}, {job.device.threads} threads) in "
        f"{_precision_words(precision)}"
    )
    started = time.perf_counter()
    trainer.train()
    # mixed precision wraps forward in autocast; the temperature is fitted on the fp32 logits evaluation will see
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    thresholds = None
    if job.data.multi_label:  # the sets' decision rule: the profile's threshold, or fitted on the held-out slice
        thresholds = _fit_thresholds(job, model, tokenizer, held_out) if held_out else None
        held_out = None
    calibration = _calibrate(job, model, tokenizer, held_out) if held_out else None
    entry = _save_entry(job, trainer, collator, tokenizer, staging, time.perf_counter() - started)
    if job.data.multi_label and world()[0] == 0:  # saved with the model: ONNX bundles and servers read it there
        from harness.set_metrics import write_thresholds

        write_thresholds(staging / "model", job.data.label_names,
                         thresholds or [job.cfg.threshold] * job.data.num_labels)  # fmt: skip
        entry["thresholds"] = thresholds
    return entry | {"calibration": calibration}


def _fit_thresholds(job: Job, model: Any, tokenizer: Any, held_out: tuple[list[Any], list[Any]]) -> list[float]:
    """Each label's threshold for its F1 on the slice of train held out from training (``harness.set_metrics``)."""
    import numpy as np

    from harness.inference import TorchEngine, batched_logits
    from harness.set_metrics import fit_thresholds

    texts, labels = held_out
    training = model.training
    engine = TorchEngine(model)
    logits = batched_logits(engine, tokenizer, texts, job.cfg.eval_batch_size, job.cfg.max_length)
    model.train(training)
    found = fit_thresholds(logits, np.asarray(labels, dtype=bool), job.cfg.threshold)
    shown = ", ".join(f"{name} {value:g}" for name, value in zip(job.data.label_names, found, strict=True))
    job.progress(f"harness: thresholds fitted on {len(texts)} held-out train examples: {shown}")
    return found


def _calibrate(job: Job, model: Any, tokenizer: Any, held_out: tuple[list[str], list[int]]) -> dict[str, Any]:
    """Temperature scaling on the slice of train held out from training (``harness.temperature``)."""
    from harness.inference import TorchEngine, batched_logits
    from harness.temperature import calibrate

    texts, labels = held_out
    training = model.training

    def logits_of(current: Any) -> Any:
        return batched_logits(TorchEngine(current), tokenizer, texts, job.cfg.eval_batch_size, job.cfg.max_length)

    result = calibrate(model, logits_of, labels)
    model.train(training)
    job.progress(
        f"harness: temperature {result['temperature']:.3f} fitted on {len(labels)} held-out train examples "
        f"(their loss {result['nll_before']:.4f} -> {result['nll_after']:.4f}), folded into {result['head']}"
    )
    return result


def _check_global_batch(profile: Profile) -> None:
    world_size = world()[1]
    if profile.training.batch_size % world_size:
        from harness.errors import ProfileError

        raise ProfileError(
            f"{profile.path}: [training] batch_size = {profile.training.batch_size} is the global batch and must "
            f"divide evenly over {world_size} processes"
        )


def _tokenized_splits(job: Job) -> tuple[Any, Any, Any, tuple[list[str], list[int]] | None]:
    """(tokenizer, train set, validation set, held-out slice of train or None), the splits tokenized once per
    content (``cached_tokenized``). With temperature calibration a stratified slice of train is held out of
    training to fit the temperature on (``harness.temperature``)."""
    tokenizer = load_tokenizer(job.source)
    identity = {"tokenizer": model_digest(job.source.folder), "max_length": job.cfg.max_length}
    train, validation = job.data.splits["train"], job.data.splits["validation"]
    texts, labels, held_out = train.texts, train.labels, None
    if job.cfg.calibration == "temperature" or (job.data.multi_label and job.cfg.thresholds == "fitted"):
        from harness.set_metrics import stratified_holdout
        from harness.temperature import held_out_slice

        if job.data.multi_label:
            kept, held = stratified_holdout(labels, job.cfg.threshold_fraction, job.cfg.seed)  # type: ignore[arg-type]
        else:
            kept, held = held_out_slice(labels, job.cfg.calibration_fraction, job.cfg.seed)
        held_out = ([texts[i] for i in held], [labels[i] for i in held])
        texts, labels = [texts[i] for i in kept], [labels[i] for i in kept]
    train_set, eval_set = (
        cached_tokenized(job.cache_dir, tokenizer, identity, t, y, job.progress)
        for t, y in ((texts, labels), (validation.texts, validation.labels))
    )
    return tokenizer, train_set, eval_set, held_out


def _precision_words(precision: str) -> str:
    return "fp32" if precision == "fp32" else f"{precision} autocast (fp32 master weights)"


def _training_arguments(
    cfg: TrainingSection, device: Device, output_dir: Path, steps_per_epoch: int, precision: str
) -> Any:
    """The profile's ``[training]`` section as ``TrainingArguments``: evaluate and checkpoint every epoch (and
    within one, ``PassesWithinEpoch``), keep the best by ``best_metric``; ``batch_size`` is the global batch, split
    over the processes; mixed precision is the Trainer's own autocast (the weights and optimizer state stay fp32)."""
    from transformers import TrainingArguments

    best_metric = cfg.best_metric
    return TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size // world()[1],
        per_device_eval_batch_size=cfg.eval_batch_size,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        seed=cfg.seed,
        data_seed=cfg.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model=best_metric,
        greater_is_better=best_metric != "eval_loss",
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 4),
        train_sampling_strategy="group_by_length",
        report_to=list(cfg.report_to),  # [] unless the profile names integrations (their own env configures them)
        disable_tqdm=True,
        use_cpu=device.kind == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=0,
    )


def _build_trainer(job: Job, args: Any, tokenizer: Any, train_set: Any, eval_set: Any) -> tuple[Any, Any]:
    """(Trainer, data collator): the classifier with a fresh head, accuracy as a metric, progress lines,
    early stopping when the profile asks; under DDP the collator records each rank's share of the data."""
    import numpy as np
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, PrinterCallback, Trainer

    def accuracy(prediction: Any) -> dict[str, float]:
        if job.data.regression:  # the loss is the squared error; the correlation is what a reader looks for
            scores = np.asarray(prediction.predictions).reshape(-1)
            return {"pearson": float(np.corrcoef(scores, prediction.label_ids)[0, 1])}
        if job.data.multi_label:  # sets at the profile's threshold, judged as the gates judge them
            from sklearn.metrics import f1_score

            from harness.set_metrics import predicted_sets

            sets = predicted_sets(prediction.predictions, [cfg.threshold] * job.data.num_labels)
            truth = np.asarray(prediction.label_ids) > 0.5
            return {"micro_f1": float(f1_score(truth, sets, average="micro", zero_division=0))}
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    cfg, world_size = job.cfg, world()[1]
    collator: Any = DataCollatorWithPadding(tokenizer)
    if world_size > 1:
        collator = ShardRecorder(collator, -(-len(train_set) // world_size))
    callbacks: list[Any] = [ProgressCallback(job.progress, cfg.epochs)]
    if cfg.evaluations_per_epoch > 1:
        steps_per_epoch = max(1, -(-len(train_set) // cfg.batch_size))
        callbacks.append(PassesWithinEpoch(steps_per_epoch, cfg.evaluations_per_epoch))
    if cfg.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    model = load_classifier(job.source.folder, job.data.label_names, cfg.seed, job.data.task)
    if job.data.regression or job.data.multi_label:
        _start_at_the_mean(model, train_set["labels"], job.data.multi_label)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the progress callback prints each log once, with time left
    return trainer, collator


def _start_at_the_mean(model: Any, targets: Any, multi_label: bool = False) -> None:
    """Set a new head's bias to the mean train target: a regression's mean score (at zero, on a 1-5 scale, the first
    epochs go to learning the mean rather than the order; measured on 600 SICK pairs: Pearson 0.04 after 3 epochs
    from 0), a multi-label head's log-odds of each label's train frequency (at zero every label starts at
    probability 0.5, so every text predicts every label). A head without a bias (decoder classifiers' ``score``)
    starts where it is."""
    import numpy as np
    import torch

    from harness.temperature import classification_head

    _, head = classification_head(model)
    mean = np.asarray(targets, dtype=np.float64).mean(axis=0)
    if multi_label:
        share = np.clip(mean, 1e-3, 1 - 1e-3)
        mean = np.log(share / (1 - share))
    if head.bias is not None:
        with torch.no_grad():
            head.bias.copy_(torch.as_tensor(np.broadcast_to(mean, head.bias.shape).copy(), dtype=head.bias.dtype))


def _save_entry(job: Job, trainer: Any, collator: Any, tokenizer: Any, staging: Path, seconds: float) -> dict:
    """Save the best model (rank 0: with its tokenizer, checkpoints removed) and return the entry record."""
    history = [dict(h) for h in trainer.state.log_history]
    best_metric = job.cfg.best_metric
    best_epoch = _best_epoch(history, best_metric)
    model_dir = staging / "model"
    trainer.save_model(str(model_dir))  # every rank calls it; the Trainer writes on rank 0 only
    shards = shard_report(collator.seen) if isinstance(collator, ShardRecorder) else None
    if world()[0] == 0:
        tokenizer.save_pretrained(str(model_dir))
        shutil.rmtree(staging / "checkpoints", ignore_errors=True)
        job.progress(f"harness: fine-tuned in {seconds:.0f}s; best epoch {best_epoch} by {best_metric}")
    return {
        "key": job.key,
        "base_model": job.source.name,
        "train_seconds": seconds,
        "history": history,
        "best_epoch": best_epoch,
        "inputs": job.inputs,
        "distributed": shards,
    }


class ShardRecorder:
    """Wraps the data collator and remembers the first epoch's examples this rank trained on
    (a digest of each example's token ids), to prove DDP split the data instead of repeating it."""

    def __init__(self, collator: Any, first_epoch: int) -> None:
        self.collator, self.first_epoch, self.seen = collator, first_epoch, []

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        for feature in features:
            if len(self.seen) < self.first_epoch:
                self.seen.append(texts_digest(list(feature["input_ids"]))[:16])
        return self.collator(features)


def shard_report(seen: list[str]) -> dict[str, Any]:
    """Gather every rank's first-epoch examples and count how they split."""
    import torch.distributed as dist

    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, seen)
    sets = [set(s) for s in gathered]
    overlap = set.intersection(*sets) if sets else set()
    return {
        "world_size": len(gathered),
        "examples_per_rank": [len(s) for s in gathered],
        "distinct_examples_covered": len(set().union(*sets)),
        "examples_on_every_rank": len(overlap),
    }


def tokenize_split(tokenizer: Any, texts: list[Example], labels: list[int], max_length: int) -> Any:
    """Tokenize without padding: ``DataCollatorWithPadding`` pads each batch to its own longest text. A pair is
    tokenized as one (``tokenizer(text, text_pair)``: both segments, their separators and token types)."""
    from datasets import Dataset, Sequence, Value

    firsts, seconds = segments(texts)
    columns = {"text": firsts} | ({"text_pair": seconds} if seconds is not None else {})
    dataset = Dataset.from_dict(columns | {"labels": labels})
    if labels and isinstance(labels[0], float):  # a regression's targets, in the dtype of the one-output head
        dataset = dataset.cast_column("labels", Value("float32"))
    if labels and isinstance(labels[0], tuple):  # a multi-label set, 0/1 per label: BCE's float targets
        dataset = dataset.cast_column("labels", Sequence(Value("float32")))
    return dataset.map(
        lambda batch: tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=max_length),
        batched=True,
        remove_columns=list(columns),
        keep_in_memory=True,
    )


def cached_tokenized(
    cache_dir: Path | None,
    tokenizer: Any,
    identity: dict[str, Any],
    texts: list[Example],
    labels: list[int],
    progress: Progress = print,
) -> Any:
    """``tokenize_split`` once per content: stored as one Parquet file under ``cache/tokenized``, keyed by
    the texts, labels, tokenizer files, max_length and library versions, so a retrain with another
    learning rate or seed reuses it. ``identity`` holds the tokenizer digest and max_length."""
    import datasets
    import pyarrow.parquet as pq
    import tokenizers

    if cache_dir is None:
        return tokenize_split(tokenizer, texts, labels, identity["max_length"])
    key = content_key(identity | {"texts": texts_digest(texts), "labels": texts_digest([str(x) for x in labels]),
                                  "versions": [datasets.__version__, tokenizers.__version__]})  # fmt: skip

    def write(path: Path) -> None:
        pq.write_table(tokenize_split(tokenizer, texts, labels, identity["max_length"]).data.table, path)

    cache = FileCache(
        cache_dir / "tokenized", "tokenized split", "tokenizing again", suffix=".parquet", progress=progress
    )
    return datasets.Dataset(pq.read_table(cache.get_file(key, write)))


def _best_epoch(history: list[dict[str, Any]], metric: str) -> float | None:
    name = metric if metric.startswith("eval_") else f"eval_{metric}"
    evals = [h for h in history if name in h]
    if not evals:
        return None
    pick = min if metric == "eval_loss" else max
    return pick(evals, key=lambda h: h[name]).get("epoch")


def _make_progress_callback() -> type:
    import time

    from transformers import TrainerCallback

    from harness.progress import STEP, open_bar

    class _ProgressCallback(TrainerCallback):
        """The fine-tune as a bar over its steps (``harness.progress``: live on a terminal, a line every few seconds
        in a log) showing epoch and latest loss, tqdm's time left; each evaluation as a line of its own (loss,
        headline metric, elapsed and time left). It replaces the Trainer's own printout of the logs."""

        def __init__(self, progress: Progress, epochs: int) -> None:
            self.progress, self.epochs = progress, epochs
            self.started, self.loss, self.bar = time.monotonic(), "", None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()
            self.bar = open_bar(self.progress, "fine-tune", state.max_steps)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step, f"epoch {state.epoch or 0:.2f}/{self.epochs}{self.loss}")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.loss = f" loss {logs['loss']:.4f}"
            if "eval_loss" not in logs or self.bar is None:
                return
            where = f"epoch {state.epoch or 0:.2f}/{self.epochs} step {state.global_step}/{state.max_steps}"
            timing = _timing(time.monotonic() - self.started, state.global_step, state.max_steps)
            shown = [f" {k} {logs[k]:.4f}" for k in ("eval_accuracy", "eval_micro_f1", "eval_pearson") if k in logs]
            self.bar.write(f"{STEP}{where} eval_loss {logs['eval_loss']:.4f}{''.join(shown)} ({timing})")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return _ProgressCallback


def _timing(elapsed: float, done: int, total: int) -> str:
    """``elapsed 1m05s, about 3m10s left`` at the pace so far (evaluation passes included in the pace)."""

    def clock(seconds: float) -> str:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"

    left = elapsed / done * (total - done) if done and total >= done else None
    return f"elapsed {clock(elapsed)}" + (f", about {clock(left)} left" if left is not None else "")


def _make_passes_callback() -> type:
    from transformers import TrainerCallback

    class _PassesWithinEpoch(TrainerCallback):
        """A validation pass and a checkpoint at each n-th of an epoch (step round(k * steps / n) of it), beside the
        Trainer's own at the epoch's end; early stopping's patience counts every pass, so training ends a part of
        an epoch after the best instead of a whole one. A pass draws from torch's random generator (each
        DataLoader iterator takes a seed from it), which would change every later dropout mask; its state is put
        back after the pass, so training follows the very path of one pass per epoch and a best checkpoint at an
        epoch's end is the same model, bit for bit."""

        def __init__(self, steps_per_epoch: int, passes: int) -> None:
            points = {(k * steps_per_epoch + passes // 2) // passes for k in range(1, passes)}
            self.steps_per_epoch, self.points = steps_per_epoch, points - {0, steps_per_epoch}
            self.generators: Any = None

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step % self.steps_per_epoch in self.points:
                control.should_evaluate = control.should_save = True
                self.generators = _generator_states()
            return control

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.generators is not None:
                _restore_generators(self.generators)
                self.generators = None

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step % self.steps_per_epoch:  # stopped within the epoch: that step was just judged
                control.should_evaluate = control.should_save = False
            return control

    return _PassesWithinEpoch


def _generator_states() -> tuple[Any, Any]:
    import torch

    return torch.get_rng_state(), torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def _restore_generators(states: tuple[Any, Any]) -> None:
    import torch

    cpu, cuda = states
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def PassesWithinEpoch(steps_per_epoch: int, passes: int) -> Any:  # noqa: N802 - reads like the class it builds
    return _make_passes_callback()(steps_per_epoch, passes)


def ProgressCallback(progress: Progress, epochs: int) -> Any:  # noqa: N802 - reads like the class it builds
    return _make_progress_callback()(progress, epochs)
