"""Where one training step's time goes: the torch profiler over real training steps of the embedded default.

    python benchmarks/profile_step.py [--steps 8] [--precision bf16|fp32]

The harness's own recipe on its own data: the packaged MiniLM-L6 with a fresh 5-class head, batches of 16 texts
of the training split, length-grouped as the Trainer's sampler groups them, AdamW with the profile's learning rate
and weight decay, bf16 autocast over fp32 weights where ``--precision bf16`` (what ``precision = "auto"`` picks on
a CPU with AVX-512 BF16 or AMX). Two warm-up steps, then ``--steps`` profiled; prints the operators by their own
CPU time (``self_cpu_time_total``), with their share of the profiled time and call counts, as a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import random

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()

    from harness.data import load_data
    from harness.models import load_classifier, load_tokenizer, resolve_model
    from harness.profile import default_profile_path, load_profile

    profile = load_profile(default_profile_path())
    data = load_data(profile)
    source = resolve_model(profile.model.name_or_path)
    tokenizer = load_tokenizer(source)
    model = load_classifier(source.folder, data.label_names, profile.training.seed, data.task).train()
    train = data.splits["train"]
    random.seed(0)
    order = sorted(random.sample(range(len(train.texts)), 16 * (args.steps + 2)), key=lambda i: len(train.texts[i]))
    batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    random.shuffle(batches)
    optimizer = torch.optim.AdamW(model.parameters(), lr=profile.training.learning_rate,
                                  weight_decay=profile.training.weight_decay)  # fmt: skip

    def step(rows: list[int]) -> None:
        texts = [train.texts[i] for i in rows]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=profile.training.max_length,
                          return_tensors="pt")  # fmt: skip
        labels = torch.tensor([train.labels[i] for i in rows])
        autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16"
                    else contextlib.nullcontext())  # fmt: skip
        with autocast:
            loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for rows in batches[:2]:
        step(rows)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=False) as prof:
        for rows in batches[2:]:
            step(rows)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"{args.steps} steps of 16 texts, {args.precision}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads: {total / 1e6:.2f} s of operator self time")  # fmt: skip
    print("| operator | self CPU s | share | calls |\n| --- | --- | --- | --- |")
    for event in events[: args.top]:
        print(f"| `{event.key}` | {event.self_cpu_time_total / 1e6:.3f} | "
              f"{event.self_cpu_time_total / total:.1%} | {event.count} |")  # fmt: skip


if __name__ == "__main__":
    main()
