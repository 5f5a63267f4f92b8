"""CLIP's byte-pair tokenizer without torch (Django-free), for the ONNX text tower in web processes.

open_clip's SimpleTokenizer imports torch at module level (it returns tensors), and importing
open_clip loads all of it; a web process must stay light (docs/scaling.md). This is the same
algorithm (OpenAI CLIP, MIT licence, as copied into open_clip/tokenizer.py): ftfy + HTML
unescape, whitespace collapsed, lower case, CLIP's regex, byte-level BPE over open_clip's own
vocabulary file, start/end tokens, truncation to the context length with the end token kept.
It returns int64 numpy arrays. Only the "lower" cleaning without a reduction mask is covered:
the ONNX export refuses models whose tokenizer is anything else (search/onnx_export.py), and a
test compares both tokenizers token for token.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

BPE_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2  # open_clip keeps this many merge rules of the file
SPECIAL = ("<start_of_text>", "<end_of_text>")
BPE_CACHE_WORDS = 20_000  # words remembered per process: queries are free text, so the cache is bounded


def default_bpe_path() -> Path:
    """open_clip's vocabulary file, found without importing open_clip (which imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("open_clip is not installed: its BPE vocabulary file is needed to tokenise queries")
    return Path(next(iter(spec.submodule_search_locations))) / BPE_FILENAME


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    """Every byte mapped to a printable character, so BPE never sees whitespace or control bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def _clean(text: str) -> str:
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).lower()


class ClipTokenizer:
    """texts -> (n, context_length) int64 token ids, the same as open_clip.get_tokenizer(name)."""

    def __init__(self, *, context_length: int, bpe_path: str | Path | None = None) -> None:
        self.bpe_path = Path(bpe_path or default_bpe_path())
        merges = gzip.open(self.bpe_path).read().decode("utf-8").split("\n")[1 : MERGES + 1]
        pairs = [tuple(line.split()) for line in merges]
        byte_chars = list(_bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(p) for p in pairs] + list(SPECIAL)
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {pair: i for i, pair in enumerate(pairs)}
        self.sot, self.eot = self.encoder[SPECIAL[0]], self.encoder[SPECIAL[1]]
        self.context_length = context_length
        self.pattern = regex.compile(
            "|".join(SPECIAL) + r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE
        )
        self._bpe = functools.lru_cache(maxsize=BPE_CACHE_WORDS)(self._bpe_uncached)

    def _bpe_uncached(self, token: str) -> tuple[str, ...]:
        if token in SPECIAL:
            return (token,)
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        return word

    def encode(self, text: str) -> list[int]:
        byte_chars = _bytes_to_unicode()
        ids: list[int] = []
        for token in self.pattern.findall(_clean(text)):
            chars = "".join(byte_chars[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self._bpe(chars))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = ids
        return out
