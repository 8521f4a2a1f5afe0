"""The target of a workload problem: a held-out figure a run counts as having reached.

The workload problems (digits, autoencoder) have no known minimum; instead each states a
:class:`Target` on one of its metrics, reports that metric for every run, and reports
``target_met`` (1 or 0) beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["TARGET_MET", "Target"]

#: The metric saying whether a run met its problem's target: 1.0 or 0.0.
TARGET_MET = "target_met"


@attrs.frozen
class Target:
    """A figure a run should reach.

    Attributes:
        metric: the problem's metric it is about, e.g. ``"test_accuracy"``.
        value: the figure to reach.
        higher_is_better: True for an accuracy (reach at least ``value``), False for a loss
            (reach at most ``value``).

    Example:
        >>> target = Target("test_accuracy", 0.95, higher_is_better=True)
        >>> str(target), target.met(0.96), target.met(float("nan"))
        ('test_accuracy ≥ 0.95', True, False)
    """

    metric: str
    value: float
    higher_is_better: bool = False

    def __str__(self) -> str:
        return f"{self.metric} {'≥' if self.higher_is_better else '≤'} {self.value:g}"

    def met(self, figure: Any) -> Any:
        """Whether a figure (a number or a NumPy array of them) reaches the target; NaN never does."""
        return figure >= self.value if self.higher_is_better else figure <= self.value

    def with_verdict(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The metrics with :data:`TARGET_MET` added: 1.0 where the target's metric reaches it.

        Example:
            >>> float(Target("test_loss", 0.5).with_verdict({"test_loss": 0.25})["target_met"])
            1.0
        """
        import numpy as np

        return {**metrics, TARGET_MET: np.asarray(self.met(np.asarray(metrics[self.metric])), np.float64) * 1.0}
