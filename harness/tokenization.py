"""Tokenizer properties: rules a tokenizer in front of a classifier must keep for *any* input.

Each ``check_*`` function states its rule, checks it on the given input, and raises
``PropertyViolation`` naming the rule, the offending input and what was seen. They
need no pytest or hypothesis, so they run from scripts too; ``harness.strategies``
supplies the hypothesis inputs and ``suites/test_tokenization.py`` drives them.

The round-trip rule is not blind equality (false for real tokenizers): it compares
with ``NormalisationRule``, read from the tokenizer's own normaliser configuration.
"""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PropertyViolation(AssertionError):
    """A property's rule did not hold; the message gives the rule, the input and the observation."""

    def __init__(self, rule: str, offender: object, observed: str) -> None:
        super().__init__(f"rule: {rule}\ninput: {offender!r}\nobserved: {observed}")
        self.rule, self.offender, self.observed = rule, offender, observed


class UnsupportedTokenizer(Exception):
    """The tokenizer's normaliser is of a kind the round-trip rule does not model."""


@dataclass(frozen=True)
class NormalisationRule:
    """What a BERT-style normaliser does to text, in the order it does it (tokenizers' bert.rs)."""

    clean_text: bool
    handle_chinese_chars: bool
    strip_accents: bool
    lowercase: bool

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> NormalisationRule:
        spec = json.loads(tokenizer.backend_tokenizer.to_str()).get("normalizer") or {}
        if spec.get("type") != "BertNormalizer":
            raise UnsupportedTokenizer(f"normaliser {spec.get('type')!r} is not modelled (BertNormalizer is)")
        lowercase = bool(spec.get("lowercase", True))
        strip = spec.get("strip_accents")
        return cls(
            clean_text=bool(spec.get("clean_text", True)),
            handle_chinese_chars=bool(spec.get("handle_chinese_chars", True)),
            strip_accents=lowercase if strip is None else bool(strip),
            lowercase=lowercase,
        )

    def apply(self, text: str) -> str:
        if self.clean_text:
            text = "".join(
                " " if _is_whitespace(c) else c for c in text if c not in ("\x00", "\ufffd") and not _is_control(c)
            )
        if self.handle_chinese_chars:
            text = "".join(f" {c} " if _is_cjk(c) else c for c in text)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.lower()
        return text


def _is_whitespace(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def _is_cjk(c: str) -> bool:
    cp = ord(c)
    return any(
        lo <= cp <= hi
        for lo, hi in (
            (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
        )
    )  # fmt: skip


def special_token_strings(tokenizer: Any) -> list[str]:
    """Literal strings the tokenizer turns into special tokens; generated text avoids them."""
    return [t for t in tokenizer.all_special_tokens if t]


def check_round_trip(tokenizer: Any, text: str, rule: NormalisationRule) -> None:
    """decode(encode(t)) equals normalise(t), ignoring whitespace, with unknown words as [UNK]."""
    statement = "decode(encode(t)) == normalise(t) up to whitespace and [UNK] for unknown words"
    ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    expected = _expected_with_unknowns(tokenizer, rule.apply(text))
    if "".join(decoded.split()) != "".join(expected.split()):
        raise PropertyViolation(statement, text, f"decoded {decoded!r}, expected {expected!r} ({rule})")


def _expected_with_unknowns(tokenizer: Any, normalised: str) -> str:
    backend = tokenizer.backend_tokenizer
    unk = tokenizer.unk_token
    words = [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(normalised)]
    return " ".join(unk if any(t.value == unk for t in backend.model.tokenize(w)) else w for w in words)


def check_truncation(tokenizer: Any, text: str, max_length: int) -> None:
    """No encoding exceeds max_length; [CLS] first and [SEP] last, each exactly once."""
    statement = f"len(ids) <= {max_length}; ids[0] is CLS and ids[-1] is SEP, each once"
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if len(ids) > max_length:
        raise PropertyViolation(statement, text, f"{len(ids)} tokens")
    if ids[0] != cls_id or ids[-1] != sep_id or ids.count(cls_id) != 1 or ids.count(sep_id) != 1:
        raise PropertyViolation(statement, text, f"tokens {tokenizer.convert_ids_to_tokens(ids)}")


def check_padding(tokenizer: Any, texts: list[str], max_length: int, pad_token_id: int) -> None:
    """The mask counts exactly the non-pad tokens; pads sit only where the mask is 0, on the configured side."""
    statement = f"mask == (id != pad {pad_token_id}); pads only on the {tokenizer.padding_side}"
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True)
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        if [int(i != pad_token_id) for i in ids] != list(mask):
            raise PropertyViolation(
                statement, texts, f"ids {ids} mask {mask} (tokenizer pad id {tokenizer.pad_token_id})"
            )
        ordered = sorted(mask, reverse=tokenizer.padding_side == "right")
        if list(mask) != ordered:
            raise PropertyViolation(statement, texts, f"mask {mask} is not padded on the {tokenizer.padding_side}")


def check_batch_equals_single(tokenizer: Any, texts: list[str], max_length: int) -> None:
    """Each row of a padded batch, without its padding, equals the text encoded alone."""
    statement = "batch row minus padding == the text encoded alone"
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True)
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"], strict=True):
        alone = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        kept = [i for i, m in zip(ids, mask, strict=True) if m]
        if kept != alone:
            raise PropertyViolation(statement, text, f"in batch {kept}, alone {alone}")


def check_offsets(tokenizer: Any, text: str, rule: NormalisationRule, max_length: int) -> None:
    """Each token's offsets lie inside the text, and the text they cover normalises to (contain) the token."""
    statement = "0 <= start < end <= len(t) and token in normalise(t[start:end])"
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    special = set(special_token_strings(tokenizer)) - {tokenizer.unk_token}
    for token, (start, end) in zip(tokens, encoded["offset_mapping"], strict=True):
        if token in special:
            continue
        if not 0 <= start < end <= len(text):
            raise PropertyViolation(statement, text, f"token {token!r} has offsets ({start}, {end})")
        piece = "".join(rule.apply(text[start:end]).split())
        if token != tokenizer.unk_token and token.removeprefix("##") not in piece:
            raise PropertyViolation(statement, text, f"token {token!r} maps to {text[start:end]!r} -> {piece!r}")


def check_reload_identical(tokenizer: Any, texts: list[str], max_length: int, reloaded: Any | None = None) -> None:
    """save_pretrained then from_pretrained (or the given copy, e.g. a bundle's) encodes to identical ids."""
    statement = "a saved and reloaded tokenizer gives identical ids"
    if reloaded is None:
        reloaded = reload_tokenizer(tokenizer)
    for text in texts:
        want = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        got = reloaded(text, truncation=True, max_length=max_length)["input_ids"]
        if want != got:
            raise PropertyViolation(statement, text, f"original {want}, reloaded {got}")


def reload_tokenizer(tokenizer: Any) -> Any:
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        return AutoTokenizer.from_pretrained(Path(folder), trust_remote_code=False)


def check_encodes_or_fails_clearly(tokenizer: Any, text: str, max_length: int) -> None:
    """Any string either encodes or raises TypeError/ValueError with a message; never another exception."""
    try:
        tokenizer(text, truncation=True, max_length=max_length)
    except (TypeError, ValueError) as error:
        if not str(error).strip():
            raise PropertyViolation(
                "encode succeeds or fails with a message", text, f"{type(error).__name__} with no message"
            ) from error
    except Exception as error:  # a caller catching bad input (TypeError/ValueError) would not catch this
        raise PropertyViolation(
            "encode succeeds or fails with TypeError/ValueError", text, f"{type(error).__name__}: {error}"
        ) from error


def vocabulary_fit(tokenizer: Any, texts: list[str], max_length: int | None = None) -> dict[str, float]:
    """Unknown-token rate and fertility (tokens per whitespace word) of ``texts``, without truncation,
    and the token-length distribution with the share of texts ``max_length`` would cut."""
    import numpy as np

    words = tokens = unknown = 0
    unk_id = tokenizer.unk_token_id
    specials = tokenizer.num_special_tokens_to_add(pair=False)
    lengths = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
        words += len(text.split())
        tokens += len(ids)
        unknown += sum(1 for i in ids if i == unk_id)
        lengths.append(len(ids) + specials)
    spread = np.asarray(lengths or [0])
    report = {
        "texts": len(texts),
        "words": words,
        "tokens": tokens,
        "unk_rate": unknown / tokens if tokens else 0.0,
        "fertility": tokens / words if words else 0.0,
        "length_p50": float(np.percentile(spread, 50)),
        "length_p95": float(np.percentile(spread, 95)),
        "length_p99": float(np.percentile(spread, 99)),
        "length_max": int(spread.max()),
    }
    if max_length:
        report["truncated_at_max_length"] = float((spread > max_length).mean())
    return report


def unknown_words(tokenizer: Any, texts: list[str], limit: int = 5) -> list[str]:
    """The first ``limit`` distinct pieces of ``texts`` that the tokenizer encodes as its unknown token."""
    found: list[str] = []
    for text in texts:
        encoded = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
        for token_id, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
            if token_id == tokenizer.unk_token_id and text[start:end] not in found:
                found.append(text[start:end])
                if len(found) == limit:
                    return found
    return found


def token_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Tokens per text with the special tokens added and nothing cut."""
    return [len(ids) for ids in tokenizer(texts, truncation=False, verbose=False)["input_ids"]]


def choose_max_length(lengths: list[int], truncation_max: float, model_limit: int, multiple: int = 8) -> int:
    """The smallest multiple of ``multiple`` that cuts at most ``truncation_max`` of ``lengths``, capped at
    what the model's position embeddings allow. With dynamic padding a batch is only as long as its longest
    text, so ``max_length`` decides what is cut, and the cost of the few longest texts."""
    if not lengths:
        return min(multiple, model_limit)
    ordered = sorted(lengths)
    may_cut = int(truncation_max * len(ordered))  # texts allowed to be longer than the choice
    needed = ordered[len(ordered) - may_cut - 1]
    return min(-(-needed // multiple) * multiple, model_limit)


def max_length_choice(
    model_folder: Path, tokenizer: Any, train_texts: list[str], truncation_max: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    """How ``max_length = "auto"`` is decided from the train split: the choice and the figures behind it."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_folder, trust_remote_code=False)
    limit = min(getattr(config, "max_position_embeddings", None) or 512, tokenizer.model_max_length)
    lengths = token_lengths(tokenizer, train_texts)
    chosen = choose_max_length(lengths, truncation_max, limit)
    cut = sum(1 for n in lengths if n > chosen)
    progress(
        f"harness: max_length auto = {chosen} (train texts up to {max(lengths, default=0)} tokens; "
        f"{cut} of {len(lengths)} cut, allowed {truncation_max:.1%}; model limit {limit})"
    )
    return {"chosen": chosen, "truncation_max": truncation_max, "train_texts": len(lengths),
            "train_truncated": cut, "train_truncated_share": cut / len(lengths) if lengths else 0.0,
            "train_length_max": max(lengths, default=0), "model_limit": limit}  # fmt: skip


def general_english() -> list[str]:
    """A few dozen plain everyday English sentences (written for this project) as the reference."""
    from importlib import resources

    text = (resources.files("harness") / "general_english.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]
