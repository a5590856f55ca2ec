"""Small helpers for the sentences that commands and reports print."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 model', '2 models' (`plural` for nouns that do not just take an s: 'key frequencies')."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
