"""A plain Hugging Face ``Trainer`` script, as a team writes one outside the harness: fine-tune a sequence
classifier on a CSV of texts and labels, and save it with ``trainer.save_model``. The harness then gates the
folder it writes without training anything:

    python examples/train_with_trainer.py --model BASE --train train.csv --validation validation.csv \\
        --labels cardiac,respiratory,digestive --output my-model
    pytest --pyargs harness.suites -m "not slow" --harness-config profile.toml --harness-model my-model

Nothing here imports the harness: the folder is what ``save_pretrained`` writes (config.json with ``id2label``,
model.safetensors, tokenizer files).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def read_rows(path: Path, label2id: dict[str, int]) -> list[dict[str, object]]:
    """``text`` and ``label`` columns; a label is a name or its id."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {"text": r["text"], "label": label2id[r["label"]] if r["label"] in label2id else int(r["label"])} for r in rows
    ]


def train(
    model: str, train_csv: Path, validation_csv: Path, labels: list[str], output: Path, *, epochs: int = 3,
    learning_rate: float = 5e-5, batch_size: int = 16, max_length: int = 128, seed: int = 42,
) -> Path:  # fmt: skip
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    label2id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.model_max_length = max_length  # saved with it: a server calling tokenizer(text, truncation=True) cuts
    classifier = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id,
        ignore_mismatched_sizes=True,
    )  # fmt: skip

    def encode(path: Path) -> Dataset:
        rows = Dataset.from_list(read_rows(path, label2id))
        return rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True)

    args = TrainingArguments(
        output_dir=str(output / "checkpoints"), num_train_epochs=epochs, learning_rate=learning_rate,
        per_device_train_batch_size=batch_size, eval_strategy="epoch", save_strategy="no", seed=seed,
        report_to=[], disable_tqdm=True, logging_strategy="epoch",
    )  # fmt: skip
    trainer = Trainer(
        model=classifier, args=args, train_dataset=encode(train_csv), eval_dataset=encode(validation_csv),
        data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
    )  # fmt: skip
    trainer.train()
    trainer.save_model(str(output))  # config.json, model.safetensors and (processing_class) the tokenizer
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="base model folder or hub id")
    parser.add_argument("--train", required=True, type=Path)
    parser.add_argument("--validation", required=True, type=Path)
    parser.add_argument("--labels", required=True, help="comma-separated label names, in output order")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    train(args.model, args.train, args.validation, args.labels.split(","), args.output, epochs=args.epochs,
          learning_rate=args.learning_rate, batch_size=args.batch_size, max_length=args.max_length)  # fmt: skip
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
