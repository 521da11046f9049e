"""Tokenizer properties: rules a tokenizer in front of a classifier must keep for *any* input.

Each ``check_*`` function states its rule, checks it on the given input, and raises
``PropertyViolation`` naming the rule, the offending input and what was seen. They
need no pytest or hypothesis, so they run from scripts too; ``harness.tokenizers.strategies``
supplies the hypothesis inputs and ``suites/test_tokenization.py`` drives them.

The round-trip and offset rules are not blind equality (false for real tokenizers): they compare
with ``harness.tokenizers.normalisers.Rebuild``, a plain-Python model of the tokenizer's normaliser and of how
its family gives text back, read from the tokenizer's own ``tokenizer.json``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.inputs import Example, is_pair, texts_of, tokenize
from harness.tokenizers.normalisers import Normaliser, Rebuild, UnsupportedTokenizer


class PropertyViolation(AssertionError):
    """A property's rule did not hold; the message gives the rule, the input and the observation."""

    def __init__(self, rule: str, offender: object, observed: str) -> None:
        super().__init__(f"rule: {rule}\ninput: {offender!r}\nobserved: {observed}")
        self.rule, self.offender, self.observed = rule, offender, observed


def rule_for(tokenizer: Any) -> Rebuild:
    """The round-trip and offset rule of ``tokenizer``, read from its own ``tokenizer.json``."""
    return Rebuild.from_spec(_spec(tokenizer))


def normaliser_for(tokenizer: Any) -> Normaliser:
    """The model of ``tokenizer``'s normaliser alone (whether it lowercases, say)."""
    return Normaliser.from_spec(_spec(tokenizer).get("normalizer"))


def _spec(tokenizer: Any) -> dict[str, Any]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizer(f"{type(tokenizer).__name__} has no tokenizer.json (a `tokenizers` backend)")
    return json.loads(backend.to_str())


@dataclass(frozen=True)
class Frame:
    """The special tokens the post-processor puts before and after a single text."""

    before: tuple[int, ...]
    after: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> Frame:
        spec = _spec(tokenizer)
        before, after = _frame(spec.get("post_processor"))
        return cls(tuple(before), tuple(after))


def _frame(spec: dict[str, Any] | None) -> tuple[list[int], list[int]]:
    kind = (spec or {}).get("type")
    if kind in (None, "ByteLevel"):
        return [], []
    if kind in ("RobertaProcessing", "BertProcessing"):
        return [spec["cls"][1]], [spec["sep"][1]]
    if kind == "TemplateProcessing":
        items = spec["single"]
        text = next(i for i, item in enumerate(items) if "Sequence" in item)
        ids = {name: token["ids"] for name, token in spec["special_tokens"].items()}
        return ([i for item in items[:text] for i in ids[item["SpecialToken"]["id"]]],
                [i for item in items[text + 1 :] for i in ids[item["SpecialToken"]["id"]]])  # fmt: skip
    if kind == "Sequence":
        parts = [_frame(inner) for inner in spec["processors"]]
        return [i for b, _ in parts for i in b], [i for _, a in reversed(parts) for i in a]
    raise UnsupportedTokenizer(f"post-processor {kind!r} is not modelled")


def special_token_strings(tokenizer: Any) -> list[str]:
    """Literal strings the tokenizer turns into special tokens; generated text avoids them."""
    return [t for t in tokenizer.all_special_tokens if t]


ROUND_TRIP = {
    "words": "up to whitespace, words the vocabulary cannot spell as the unknown token",
    "bytes": "exactly: every byte is in the byte-level alphabet",
    "metaspace": "with the space marker read as a space and the prepended one dropped, characters outside the "
    "vocabulary as the unknown token (none with byte fallback)",
}


def check_round_trip(tokenizer: Any, text: str, rule: Rebuild) -> None:
    """decode(encode(t)) gives back the normalised text as the tokenizer's family rebuilds it (``Rebuild``)."""
    statement = f"decode(encode(t)) == normalise(t) {ROUND_TRIP[rule.family]}"
    ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
    decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    if not rule.matches(decoded, text):
        raise PropertyViolation(statement, text, f"decoded {decoded!r}, expected {rule.expected(text)!r} ({rule})")


def check_truncation(tokenizer: Any, text: str, max_length: int, frame: Frame | None = None) -> None:
    """No encoding exceeds max_length; the post-processor's special tokens start and end it, each once."""
    frame = frame or Frame.from_tokenizer(tokenizer)
    names = tokenizer.convert_ids_to_tokens
    statement = (f"len(ids) <= {max_length}; ids start with {names(list(frame.before))} and end with "
                 f"{names(list(frame.after))}, each once")  # fmt: skip
    ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
    if len(ids) > max_length:
        raise PropertyViolation(statement, text, f"{len(ids)} tokens")
    framing = [*frame.before, *frame.after]
    ends = ids[: len(frame.before)] == list(frame.before) and ids[len(ids) - len(frame.after) :] == list(frame.after)
    if not ends or any(ids.count(i) != framing.count(i) for i in framing):
        raise PropertyViolation(statement, text, f"tokens {names(ids)}")


def check_pair_truncation(tokenizer: Any, pair: tuple[str, str], max_length: int) -> None:
    """A pair cut at max_length (``longest_first``, as training and serving cut it) keeps the pair's special tokens,
    each once, and tokens of both texts (a text is never dropped whole while the other keeps tokens to spare); where
    the model reads ``token_type_ids`` they mark the two texts apart, each text with one type."""
    statement = (f"len(ids) <= {max_length}; the pair's special tokens once each; tokens of both texts; "
                 "token types mark the second text")  # fmt: skip
    encoded = tokenizer(*pair, truncation=True, max_length=max_length)
    ids, owners = encoded["input_ids"], encoded.sequence_ids()
    if len(ids) > max_length:
        raise PropertyViolation(statement, pair, f"{len(ids)} tokens")
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    if owners.count(None) != specials:
        raise PropertyViolation(statement, pair, f"{owners.count(None)} special tokens, the pair template adds "
                                f"{specials}: {tokenizer.convert_ids_to_tokens(ids)}")  # fmt: skip
    alone = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in pair]
    kept = [owners.count(0), owners.count(1)]
    room = max_length - specials
    for segment in (0, 1):
        if alone[segment] and not kept[segment] and room >= 2:  # longest_first leaves each text a token
            tokens = tokenizer.convert_ids_to_tokens(ids)
            raise PropertyViolation(statement, pair, f"text {segment + 1} ({alone[segment]} tokens) dropped whole; "
                                    f"kept {kept} tokens of {alone}: {tokens}")  # fmt: skip
    types = encoded.get("token_type_ids")
    if types is not None and "token_type_ids" in tokenizer.model_input_names and all(kept):
        by_segment = [{t for t, o in zip(types, owners, strict=True) if o == s} for s in (0, 1)]
        if any(len(found) != 1 for found in by_segment) or by_segment[0] == by_segment[1]:
            raise PropertyViolation(statement, pair, f"token types of text 1 {sorted(by_segment[0])}, of text 2 "
                                    f"{sorted(by_segment[1])}: the model cannot tell the texts apart")  # fmt: skip


def check_padding(tokenizer: Any, texts: list[Example], max_length: int, pad_token_id: int) -> None:
    """The mask counts exactly the non-pad tokens; pads sit only where the mask is 0, on the configured side."""
    statement = f"mask == (id != pad {pad_token_id}); pads only on the {tokenizer.padding_side}"
    batch = tokenize(tokenizer, texts, truncation=True, max_length=max_length, padding=True)
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        if [int(i != pad_token_id) for i in ids] != list(mask):
            raise PropertyViolation(
                statement, texts, f"ids {ids} mask {mask} (tokenizer pad id {tokenizer.pad_token_id})"
            )
        ordered = sorted(mask, reverse=tokenizer.padding_side == "right")
        if list(mask) != ordered:
            raise PropertyViolation(statement, texts, f"mask {mask} is not padded on the {tokenizer.padding_side}")


def check_batch_equals_single(tokenizer: Any, texts: list[Example], max_length: int) -> None:
    """Each row of a padded batch, without its padding, equals the text (or pair) encoded alone."""
    statement = "batch row minus padding == the text encoded alone"
    batch = tokenize(tokenizer, texts, truncation=True, max_length=max_length, padding=True)
    for text, ids, mask in zip(texts, batch["input_ids"], batch["attention_mask"], strict=True):
        alone = tokenize(tokenizer, [text], truncation=True, max_length=max_length)["input_ids"][0]
        kept = [i for i, m in zip(ids, mask, strict=True) if m]
        if kept != alone:
            raise PropertyViolation(statement, text, f"in batch {kept}, alone {alone}")


def check_offsets(tokenizer: Any, text: str, rule: Rebuild, max_length: int) -> None:
    """Each token's span lies inside the text, in order, and the text under it normalises to (contains) what
    the token stands for, compared in bytes (a byte-level token may hold part of one character), markers and
    whitespace removed. A token standing for whitespace alone may have an empty span (offsets trimmed); the
    unknown token must cover some text."""
    statement = "0 <= start <= end <= len(t), spans in order, and token in normalise(t[start:end])"
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    special = set(special_token_strings(tokenizer)) - {tokenizer.unk_token}
    previous = (0, 0)
    for token, (start, end) in zip(tokens, encoded["offset_mapping"], strict=True):
        if token in special:
            continue
        where = f"token {token!r} has offsets ({start}, {end})"
        if not 0 <= start <= end <= len(text) or start < previous[0] or end < previous[1]:
            raise PropertyViolation(statement, text, f"{where}, after a token at {previous}")
        previous = (start, end)
        want = b"" if token == tokenizer.unk_token else _without_whitespace(rule.token_bytes(token))
        if (want or token == tokenizer.unk_token) and start == end:
            raise PropertyViolation(statement, text, f"{where}: an empty span for a token that stands for text")
        piece = rule.span_bytes(text[start:end])
        if want not in piece and want not in _without_whitespace(piece):  # a byte of "\x85" is no whitespace
            raise PropertyViolation(statement, text, f"{where}, {text[start:end]!r} normalises to {piece!r}")


def _without_whitespace(raw: bytes) -> bytes:
    """Whitespace removed from UTF-8 bytes; bytes of a partial character are kept as they are."""
    text = raw.decode("utf-8", "surrogateescape")
    return "".join(c for c in text if not c.isspace()).encode("utf-8", "surrogateescape")


def check_reload_identical(tokenizer: Any, texts: list[Example], max_length: int, reloaded: Any | None = None) -> None:
    """save_pretrained then from_pretrained (or the given copy, e.g. a bundle's) encodes to identical ids."""
    statement = "a saved and reloaded tokenizer gives identical ids"
    if reloaded is None:
        reloaded = reload_tokenizer(tokenizer)
    for text in texts:
        want = tokenize(tokenizer, [text], truncation=True, max_length=max_length)["input_ids"][0]
        got = tokenize(reloaded, [text], truncation=True, max_length=max_length)["input_ids"][0]
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


def vocabulary_fit(tokenizer: Any, texts: list[Example], max_length: int | None = None) -> dict[str, float]:
    """Unknown-token rate and fertility (tokens per whitespace word) of ``texts``, without truncation,
    and the token-length distribution with the share of texts ``max_length`` would cut (a pair: both texts and
    the pair's special tokens, as the model reads it)."""
    import numpy as np

    words = tokens = unknown = 0
    unk_id = tokenizer.unk_token_id
    lengths = []
    for example in texts:
        length = tokenizer.num_special_tokens_to_add(pair=is_pair(example))
        for text in texts_of([example]):
            ids = tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"]
            words += len(text.split())
            tokens += len(ids)
            unknown += sum(1 for i in ids if i == unk_id)
            length += len(ids)
        lengths.append(length)
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


def unknown_words(tokenizer: Any, texts: list[Example], limit: int = 5) -> list[str]:
    """The first ``limit`` distinct pieces of ``texts`` (each text of a pair) the tokenizer reads as unknown."""
    found: list[str] = []
    for text in texts_of(texts):
        encoded = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=True)
        for token_id, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
            if token_id == tokenizer.unk_token_id and text[start:end] not in found:
                found.append(text[start:end])
                if len(found) == limit:
                    return found
    return found


def token_lengths(tokenizer: Any, texts: list[Example]) -> list[int]:
    """Tokens per text (or pair) with the special tokens added and nothing cut."""
    return [len(ids) for ids in tokenize(tokenizer, texts, truncation=False, verbose=False)["input_ids"]]


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

    text = (resources.files("harness.tokenizers") / "general_english.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]
