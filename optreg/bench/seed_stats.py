"""Seeds as an axis of a bench: ``--seeds`` read, and the spread of a setting's runs over them.

``--seeds`` takes a range ``0-9`` (both ends included), a list ``0,3,7``, or a count ``10``
(seeds 0 to 9). Every setting runs once per seed, side by side in the same loop; what a setting
did over its seeds is summarised as the mean ± the sample standard deviation and a 95%
confidence interval of the mean (Student's t with n − 1 degrees of freedom).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import attrs

from optreg.bench.grid import MAX_RUNS
from optreg.errors import OptionError

__all__ = ["MAX_SEEDS", "Spread", "parse_seeds", "spread", "t_quantile_975"]

#: The most seeds one bench may take (each multiplies the runs; the run limit applies too).
MAX_SEEDS = MAX_RUNS
_INTEGER = r"-?\d+"
_RANGE = re.compile(rf"^({_INTEGER})-({_INTEGER})$")


def parse_seeds(text: str) -> tuple[int, ...]:
    """The seeds of a ``--seeds`` value: ``A-B`` (from A to B), ``a,b,c``, or a count ``N`` (0 to N − 1).

    Raises:
        OptionError: anything else, an empty or reversed range, a seed given twice, or more
            than :data:`MAX_SEEDS` seeds.

    Example:
        >>> parse_seeds("0-3"), parse_seeds("0,3,7"), parse_seeds("2")
        ((0, 1, 2, 3), (0, 3, 7), (0, 1))
    """
    stripped = text.strip()
    ranged = _RANGE.match(stripped)
    if ranged:
        first, last = int(ranged.group(1)), int(ranged.group(2))
        if last < first:
            raise OptionError(f"--seeds {stripped!r}: the range ends before it starts")
        if last - first + 1 > MAX_SEEDS:
            raise OptionError(f"--seeds {stripped!r}: more than {MAX_SEEDS} seeds")
        seeds = tuple(range(first, last + 1))
    elif "," in stripped:
        seeds = tuple(_whole(part, stripped) for part in stripped.split(","))
    else:
        count = _whole(stripped, stripped)
        if not 1 <= count <= MAX_SEEDS:
            raise OptionError(f"--seeds {stripped!r}: a count of seeds is from 1 to {MAX_SEEDS}")
        seeds = tuple(range(count))
    if len(set(seeds)) != len(seeds):
        raise OptionError(f"--seeds {stripped!r} names a seed twice")
    return seeds


def _whole(part: str, text: str) -> int:
    """One whole number of a ``--seeds`` value."""
    if not re.fullmatch(_INTEGER, part.strip()):
        raise OptionError(f"--seeds takes a range A-B, a list a,b,c or a count N of whole numbers, got {text!r}")
    return int(part)


@attrs.frozen
class Spread:
    """Finite values summarised: count, mean, sample standard deviation, 95% interval of the mean.

    Attributes:
        count: how many values (non-finite ones are left out and counted in ``left_out``).
        mean: their mean (NaN when there are none).
        std: their sample standard deviation (0 for one value, NaN for none).
        low: the 95% interval's lower end (the mean itself for one value).
        high: its upper end.
        left_out: values that were not finite.
    """

    count: int
    mean: float
    std: float
    low: float
    high: float
    left_out: int = 0

    def text(self, digits: int = 4) -> str:
        """``mean ± std``, or ``none`` when there were no finite values.

        Example:
            >>> spread([1.0, 2.0, 3.0]).text()
            '2 ± 1'
        """
        if not self.count:
            return "none"
        return f"{self.mean:.{digits}g} ± {self.std:.{digits}g}"

    def interval_text(self, digits: int = 4) -> str:
        """``[low, high]``, or ``none``.

        Example:
            >>> spread([1.0, 2.0, 3.0]).interval_text()
            '[-0.4843, 4.484]'
        """
        if not self.count:
            return "none"
        return f"[{self.low:.{digits}g}, {self.high:.{digits}g}]"

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite figures as None).

        Example:
            >>> spread([2.0]).as_record()["interval"]
            [2.0, 2.0]
        """

        def number(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {"count": self.count, "mean": number(self.mean), "std": number(self.std),
                "interval": [number(self.low), number(self.high)], "left_out": self.left_out}


def spread(values: Sequence[float]) -> Spread:
    """The :class:`Spread` of the finite values among ``values``.

    Example:
        >>> s = spread([1.0, 3.0, float("nan")])
        >>> (s.count, s.mean, s.left_out)
        (2, 2.0, 1)
    """
    finite = [float(v) for v in values if math.isfinite(v)]
    left_out = len(values) - len(finite)
    n = len(finite)
    if n == 0:
        return Spread(0, math.nan, math.nan, math.nan, math.nan, left_out)
    mean = math.fsum(finite) / n
    if n == 1:
        return Spread(1, mean, 0.0, mean, mean, left_out)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    return Spread(n, mean, std, mean - half, mean + half, left_out)


#: Student's t 97.5% quantiles for 1 to 30 degrees of freedom.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile (two-sided 95%): tabled up to 30 degrees of freedom, then
    the Cornish–Fisher expansion around the normal's 1.959964 (within 1e-4 from 30 on).

    Example:
        >>> t_quantile_975(9), round(t_quantile_975(1000), 3)
        (2.262, 1.962)
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = 1.959963984540054
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
