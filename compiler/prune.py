"""Magnitude pruning, unstructured or vector-wise, as a pass of its own or before another one.

A *vector* is what SmartDeal's Ce calls a row and what the SmartDeal accelerator's index selector
skips: S consecutive weights of one filter, taken in (C, R, kernel width) order after zero-padding
the filter to a multiple of S. For a 3x3 kernel and S = 3 that is one kernel row of one input
channel; for an FC layer or a 1x1 conv it is S consecutive inputs. Vector-wise pruning removes the
same vectors from every filter of a group of ``group_size`` output channels, so hardware slices
that compute those channels together skip the same activation rows in lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.compiler.quantize import check_weight
from tessera.errors import CompileError

STRUCTURES = ("element", "vector")


def filter_rows(w: np.ndarray, S: int) -> np.ndarray:
    """(K, rows, S): each filter flattened in (C, R, kernel width) order, zero-padded to S."""
    flat = w.reshape(w.shape[0], -1)
    pad = -flat.shape[1] % S
    if pad:
        flat = np.concatenate([flat, np.zeros((flat.shape[0], pad), flat.dtype)], axis=1)
    return flat.reshape(w.shape[0], -1, S)


def from_filter_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of filter_rows: drop the padding and restore the weight's shape."""
    per_filter = int(np.prod(shape[1:]))
    return rows.reshape(shape[0], -1)[:, :per_filter].reshape(shape)


def group_mean(values: np.ndarray, group_size: int) -> np.ndarray:
    """Mean over consecutive groups of ``group_size`` entries of axis 0 (the last may be short)."""
    k = values.shape[0]
    groups = -(-k // group_size)
    padded = np.zeros((groups * group_size, *values.shape[1:]), values.dtype)
    padded[:k] = values
    counts = np.minimum(group_size, k - np.arange(groups) * group_size)
    sums = padded.reshape(groups, group_size, *values.shape[1:]).sum(axis=1)
    return sums / counts.reshape(-1, *([1] * (values.ndim - 1)))


def check_structure(structure: str, group_size: int) -> None:
    if structure not in STRUCTURES:
        raise CompileError(f"sparsity structure '{structure}' is unknown: allowed is one of "
                           f"{', '.join(STRUCTURES)}")
    if not (isinstance(group_size, int) and group_size >= 1):
        raise CompileError(f"group_size = {group_size!r} is invalid: allowed is a positive "
                           "integer")


@dataclass(frozen=True)
class PruneResult:
    """The pruned weight and the mask of the weights it kept."""
    weight: np.ndarray
    mask: np.ndarray


def prune(w, fraction: float, structure: str = "element", S: int = 3, group_size: int = 1,
          name: str = "weight") -> PruneResult:
    """Zero the ``fraction`` of weights (element) or group vectors (vector) smallest in magnitude.

    Element scores are |w|; a group vector scores the mean of w**2 over its filters. Exactly
    floor(fraction * count) items go; ties go to the lower index, so the result is deterministic.
    """
    w = check_weight(name, w)
    check_structure(structure, group_size)
    if not (0 <= fraction < 1):
        raise CompileError(f"prune fraction = {fraction!r} is invalid: allowed is a number in "
                           "[0, 1)")
    if not (isinstance(S, int) and S >= 1):
        raise CompileError(f"vector length S = {S!r} is invalid: allowed is a positive integer")
    if structure == "element":
        scores = np.abs(w).ravel()
    else:
        scores = group_mean((filter_rows(w, S) ** 2).sum(axis=2), group_size).ravel()
    keep = np.ones(scores.size, bool)
    keep[np.argsort(scores, kind="stable")[:int(fraction * scores.size)]] = False
    if structure == "element":
        mask = keep.reshape(w.shape)
    else:
        groups = keep.reshape(-1, -(-w[0].size // S))
        rows = np.repeat(groups, group_size, axis=0)[:w.shape[0]]
        mask = from_filter_rows(np.repeat(rows[:, :, None], S, axis=2), w.shape)
    return PruneResult(np.where(mask, w, 0.0), mask)
