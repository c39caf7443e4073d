"""Which synapses cannot become edges, and why: NaN points, outside the volume, unlabelled, autapses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

REASONS = ("nan_coordinates", "outside_volume", "unlabelled", "same_segment")


@dataclass
class DropReport:
    """Counts of dropped synapses per reason (each synapse counted once, for its first reason).

    Attributes:
        n_input: synapses read.
        dropped: ``{reason: count}`` over :data:`REASONS`.
    """

    n_input: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {r: 0 for r in REASONS})

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    @property
    def n_kept(self) -> int:
        return self.n_input - self.n_dropped

    def summary(self) -> str:
        parts = [f"{count} {reason.replace('_', ' ')}" for reason, count in self.dropped.items() if count]
        return f"kept {self.n_kept} of {self.n_input} synapses" + (f"; dropped {', '.join(parts)}" if parts else "")

    def to_dict(self) -> dict:
        return {"n_input": self.n_input, "n_kept": self.n_kept, "dropped": dict(self.dropped)}


def classify_synapses(pre_nm: np.ndarray, post_nm: np.ndarray, inside: np.ndarray,
                      pre_ids: np.ndarray, post_ids: np.ndarray) -> tuple[np.ndarray, DropReport]:
    """Decide which synapses to keep.

    Args:
        pre_nm, post_nm: ``(N, 3)`` points in nm (zyx).
        inside: ``(N,)`` bool, both points lie inside the volume.
        pre_ids, post_ids: ``(N,)`` segment ids at the points (anything where not ``inside``).

    Returns:
        ``(keep, report)``: ``(N,)`` bool mask, and the counts per reason in the order NaN
        coordinates, outside the volume, either end unlabelled (id 0), pre == post.
    """
    finite = np.isfinite(pre_nm).all(axis=1) & np.isfinite(post_nm).all(axis=1)
    remaining = np.ones(len(finite), dtype=bool)
    report = DropReport(n_input=len(finite))
    tests = (
        ("nan_coordinates", ~finite),
        ("outside_volume", ~np.asarray(inside, dtype=bool)),
        ("unlabelled", (np.asarray(pre_ids) == 0) | (np.asarray(post_ids) == 0)),
        ("same_segment", np.asarray(pre_ids) == np.asarray(post_ids)),
    )
    for reason, bad in tests:
        hit = remaining & bad
        report.dropped[reason] = int(hit.sum())
        remaining &= ~bad
    return remaining, report
