"""The modular-addition data set: all p^2 ordered pairs (a, b) with label (a + b) mod p.

Pairs are indexed in row-major order, index = a * p + b, so a tensor over all inputs reshapes
to the grid [a, b]. The train/test split is a seeded shuffle whose seed is derived from the
run seed (science.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from quadlens.config import derived_seed


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b), each int64 of shape [p*p], in row-major order."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def labels(p: int) -> torch.Tensor:
    a, b = all_pairs(p)
    return (a + b) % p


@dataclass(frozen=True)
class Split:
    train: torch.Tensor  # int64 pair indices, [n_train]
    test: torch.Tensor  # int64 pair indices, [n_test]
    train_mask: torch.Tensor  # bool, [p*p]


def make_split(p: int, seed: int, train_frac: float) -> Split:
    """The first `train_frac` of a seeded permutation of all pairs is the training set."""
    gen = torch.Generator().manual_seed(derived_seed(seed, "split"))
    perm = torch.randperm(p * p, generator=gen)
    n_train = int(train_frac * p * p)
    mask = torch.zeros(p * p, dtype=torch.bool)
    mask[perm[:n_train]] = True
    return Split(train=perm[:n_train], test=perm[n_train:], train_mask=mask)
