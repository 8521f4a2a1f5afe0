"""The 8×8 handwritten digits shipped with optreg (``data/digits.csv.gz``), read on first use.

1797 images of 64 pixels (integers 0–16) and their digit; origin and licence in
``data/README.md``. The split is fixed: every fourth row (rows 0, 4, 8, …) is the test set,
450 images; the other 1347 train. Pixels are scaled to [0, 1].
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["CLASSES", "DATA_FILE", "PIXELS", "ROWS", "TEST_ROWS", "TRAIN_ROWS", "image_patches", "load_digits"]

DATA_FILE = Path(__file__).parent / "data" / "digits.csv.gz"
#: Images in the file, pixels per image, digit classes.
ROWS, PIXELS, CLASSES = 1797, 64, 10
#: The fixed split: rows whose index is a multiple of 4 are the test set.
TEST_ROWS = (ROWS + 3) // 4
TRAIN_ROWS = ROWS - TEST_ROWS


@lru_cache(maxsize=1)
def load_digits() -> tuple[Any, ...]:
    """The digits as NumPy arrays: train pixels ``[1347, 64]`` float32 in [0, 1], train labels
    ``[1347]`` int32, test pixels ``[450, 64]``, test labels ``[450]``.

    Raises:
        ValueError: the shipped file does not hold 1797 rows of 64 pixels and a digit.

    Example:
        >>> x_train, y_train, x_test, y_test = load_digits()
        >>> x_train.shape, x_test.shape, int(y_train.max())
        ((1347, 64), (450, 64), 9)
    """
    import gzip

    import numpy as np

    with gzip.open(DATA_FILE, "rt", newline="", encoding="ascii") as handle:
        rows = [[int(value) for value in row] for row in csv.reader(handle)]
    data = np.array(rows if {len(row) for row in rows} == {PIXELS + 1} else [], np.int32)
    if data.shape != (ROWS, PIXELS + 1) or not 0 <= data.min() <= data[:, :PIXELS].max() <= 16:
        raise ValueError(f"{DATA_FILE} does not hold {ROWS} rows of {PIXELS} pixels 0-16 and a digit")
    labels = data[:, PIXELS]
    if labels.max() >= CLASSES:
        raise ValueError(f"{DATA_FILE} has a digit above {CLASSES - 1}")
    test = np.arange(ROWS) % 4 == 0
    pixels = data[:, :PIXELS].astype(np.float32) / 16
    return pixels[~test], labels[~test], pixels[test], labels[test]


def image_patches(pixels: Any, size: int = 3) -> Any:
    """Every ``size × size`` patch of each 8×8 image, for a convolution without padding written
    as a matrix product (patch ``k = row * size + column``, as a ``[size, size, 1, filters]``
    kernel flattens).

    Args:
        pixels: ``[images, 64]`` NumPy pixels.
        size: the kernel's side.

    Returns:
        ``[images, (8 − size + 1)², size²]`` float32, positions row by row.

    Example:
        >>> image_patches(load_digits()[0][:2]).shape
        (2, 36, 9)
    """
    import numpy as np

    images = np.asarray(pixels, np.float32).reshape(-1, 8, 8)
    side = 8 - size + 1
    patches = [images[:, i : i + side, j : j + side] for i in range(size) for j in range(size)]
    return np.stack(patches, axis=-1).reshape(len(images), side * side, size * size)
