"""Bytes of optimizer state on a transformer block's variables: optreg's, Keras's, and the algorithm's least.

The variables are a transformer block's and its token embedding: a 4096×1024 and a 1024×4096
feed-forward kernel, four 1024×1024 attention kernels, a 1024 layer-norm scale and a 50000×1024
embedding table (63.8M float32 parameters; one full-size slot is 255 MB). For every built-in
optimizer, with its defaults, this builds the optimizer's state on them (``opt.build``, no step)
and adds up the bytes of every slot of every variable; for the built-ins Keras also has, it builds
``keras.optimizers.X`` on Keras variables of the same shapes and names and adds up its variables
but the step counter and the learning rate. The least state an algorithm needs is written down in
:data:`MINIMUM` (in float32 slots: what it must carry from one step to the next), and the table
gives optreg / least and optreg / Keras. The state is really allocated: one optimizer at a time,
about 1 GB at the most (prodigy's four full slots).

Usage: ``python benchmarks/state_memory.py [--scale N] [--check]`` (``--scale 16`` divides every
dimension by 16, for a quick run; ``--check`` exits 1 when an optimizer keeps more than 1.01× its
least or than Keras's).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Callable, Mapping, Sequence

import attrs

import optreg

#: name → shape of the variables: a transformer block's and its token embedding.
BLOCK: Mapping[str, tuple[int, ...]] = {
    "ffn_down_kernel": (4096, 1024),
    "ffn_up_kernel": (1024, 4096),
    "attention_query_kernel": (1024, 1024),
    "attention_key_kernel": (1024, 1024),
    "attention_value_kernel": (1024, 1024),
    "attention_output_kernel": (1024, 1024),
    "layer_norm_gamma": (1024,),
    "token_embedding": (50000, 1024),
}

FLOAT32 = 4
#: The most an optimizer's state may exceed its least (the issue's acceptance).
TOLERANCE = 1.01


def _size(shape: Sequence[int]) -> int:
    """The number of elements of a shape."""
    size = 1
    for dim in shape:
        size *= dim
    return size


@attrs.frozen
class Least:
    """The least state an algorithm carries between steps, in float32 numbers.

    Attributes:
        what: the state in words.
        floats: shapes (name → shape) → how many float32 numbers.
    """

    what: str
    floats: Callable[[Mapping[str, tuple[int, ...]]], int]


def full(slots: int, per_variable: int = 0, once: int = 0) -> Least:
    """``slots`` full-size slots, plus ``per_variable`` numbers per variable and ``once`` in all."""
    words = f"{slots} full slot{'s' if slots != 1 else ''}" if slots else "none"
    if per_variable:
        words += f" + {per_variable} number per variable"
    if once:
        words += f" + {once} number"
    return Least(
        words, lambda shapes: slots * sum(map(_size, shapes.values())) + per_variable * len(shapes) + once
    )


def _factored(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Adafactor's: a row and a column statistic for each matrix (of each leading slice), the
    squared-gradient mean for the others."""
    total = 0
    for shape in shapes.values():
        if len(shape) >= 2:
            total += _size(shape[:-2]) * (shape[-2] + shape[-1])
        else:
            total += _size(shape)
    return total


def _channels(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Nero's: one number per output channel (a kernel's last axis; a vector's own elements)
    and one scale per variable."""
    return sum((shape[-1] if len(shape) >= 2 else _size(shape)) + 1 for shape in shapes.values())


def _cover(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """SM3's: from rank 2 one accumulator per row and one per output channel, a full one for
    the others (its momentum slot exists only when ``momentum > 0``; the default is 0)."""
    return sum(_size(shape[:-1]) + shape[-1] if len(shape) >= 2 else _size(shape) for shape in shapes.values())


def _muon(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Muon's: the momentum of every variable, and the squared-gradient mean of the AdamW branch
    (every variable but the matrices, and the embedding, excluded by default)."""
    total = 0
    for name, shape in shapes.items():
        adamw = len(shape) != 2 or "embedding" in name
        total += _size(shape) * (2 if adamw else 1)
    return total


def _preconditioned(what: str, gram_pairs: int, full_slots: int, max_side: int) -> Least:
    """Shampoo's and SOAP's: ``gram_pairs`` pairs of an [m, m] and an [n, n] matrix and
    ``full_slots`` full slots for each [m, n] matrix whose sides are at most ``max_side`` (the
    spec's default), and ``max(full_slots, 1)`` full slots (the diagonal fallback, or Adam) for
    every other variable."""

    def floats(shapes: Mapping[str, tuple[int, ...]]) -> int:
        total = 0
        for shape in shapes.values():
            if len(shape) == 2 and max(shape) <= max_side:
                total += gram_pairs * (shape[0] ** 2 + shape[1] ** 2) + full_slots * _size(shape)
            else:
                total += max(full_slots, 1) * _size(shape)
        return total

    return Least(what, floats)


#: Each built-in's least state with its defaults (``sgd`` and ``rmsprop`` keep a momentum slot
#: only when ``momentum > 0``; their default is 0).
MINIMUM: Mapping[str, Least] = {
    "accsgd": full(1),
    "adabelief": full(2),
    "adaboundw": full(2),
    "adadelta": full(2),
    "adafactor": Least("rows + columns for matrices, 1 full slot for the others", _factored),
    "adagrad": full(1),
    "adahessian": full(2),  # the Hessian estimate of a step is used within it, not kept
    "adai": full(3),  # m, v and the running product of every element's beta_1
    "adam": full(2),
    "adam_mini": full(1, per_variable=1),
    "adamaxw": full(2),
    "adamax": full(2),
    "adamod": full(3),
    "adamp": full(2),
    "adamw": full(2),
    "adan": full(4),
    "adanorm": full(2, per_variable=1),
    "adasmooth": full(4),  # the last variable, the displacement, the path length, the moment
    "ademamix": full(3),
    "adopt": full(2),
    "aggmo": full(3),
    "amos": Least("2 numbers per variable", lambda shapes: 2 * len(shapes)),  # v, b (m only with momentum > 0)
    "amsgrad": full(3),
    "apollo": full(3),  # the gradient average, the diagonal Hessian, the last step
    "cautious_adamw": full(2),
    "diffgrad": full(3),
    "ftrl": full(2),
    "fromage": full(0),
    "gradient_descent": full(0),
    "kate": full(2),
    "lamb": full(2),
    "laprop": full(2),
    "lars": full(1),
    "lion": full(1),
    "lookahead": full(3),  # the slow weights, and its inner adam's two
    "madgrad": full(3),
    "mars_adamw": full(3),
    "momentum": full(1),
    "muon": Least("1 full slot + 1 on the AdamW branch (non-matrices, the embedding)", _muon),
    "nadam": full(2, once=1),  # the momentum schedule's product: one number (optreg keeps one per variable)
    "nadamw": full(2),
    "nero": Least("1 number per output channel + 1 per variable", _channels),
    "nesterov": full(1),
    "noisy_sgd": full(0, per_variable=1),  # the variable's noise index, so a resume draws the same
    "novograd": full(1, per_variable=1),
    "optimistic_gd": full(1),
    "padam": full(2),
    "pid": full(3),
    "prodigy": full(4),
    "qhadam": full(2),
    "qhm": full(1),
    "radam": full(2),
    "ranger": full(3),  # radam's two and the slow weights
    "rmsprop": full(1),
    "rprop": full(2),
    "schedule_free_adamw": full(2),
    "sgd": full(0),
    "shampoo": _preconditioned(
        "m² + n² (L, R) per m × n matrix with sides ≤ 1024, 1 full slot for the rest", 1, 0, 1024
    ),
    "signsgd": full(0),
    "signum": full(1),
    "sm3": Least("rows + output channels from rank 2, 1 full slot for the others", _cover),
    "soap": _preconditioned(
        "2(m² + n²) (L, R, their eigenbases) + 2 full slots per m × n matrix with sides ≤ 10000, 2 full for the rest",
        2,
        2,
        10000,
    ),
    "swats": full(3, per_variable=3),
    "tiger": full(1),
    "yogi": full(2),
}

#: The built-ins Keras has too: name → Keras class and its arguments (its defaults otherwise).
KERAS: Mapping[str, tuple[str, dict]] = {
    "adadelta": ("Adadelta", {}),
    "adafactor": ("Adafactor", {}),
    "adagrad": ("Adagrad", {}),
    "adam": ("Adam", {}),
    "adamax": ("Adamax", {}),
    "adamw": ("AdamW", {}),
    "amsgrad": ("Adam", {"amsgrad": True}),
    "ftrl": ("Ftrl", {}),
    "gradient_descent": ("SGD", {}),
    "lamb": ("Lamb", {}),
    "lion": ("Lion", {}),
    "momentum": ("SGD", {"momentum": 0.7}),
    "muon": ("Muon", {}),
    "nadam": ("Nadam", {}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "rmsprop": ("RMSprop", {}),
    "schedule_free_adamw": ("ScheduleFreeAdamW", {}),
    "sgd": ("SGD", {}),
}


def scaled(shapes: Mapping[str, tuple[int, ...]], scale: int) -> dict[str, tuple[int, ...]]:
    """Every dimension divided by ``scale`` (at least 1)."""
    return {name: tuple(max(1, dim // scale) for dim in shape) for name, shape in shapes.items()}


def keras_variables(shapes: Mapping[str, tuple[int, ...]]) -> list:
    """Keras variables of these shapes and names (zeros), as a model holds them."""
    import keras

    return [keras.Variable(keras.ops.zeros(shape), name=name) for name, shape in shapes.items()]


def optreg_bytes(name: str, variables: Sequence) -> int:
    """The bytes of the state a built-in optreg optimizer builds on these variables: every slot
    of every variable, the inner optimizer's too (lookahead)."""
    opt = optreg.registry.create(name)
    opt.build(variables)
    total = 0
    for holder in (opt, getattr(opt, "inner", None)):
        if holder is None:
            continue
        for var in variables:
            total += sum(slot.shape.num_elements() * slot.dtype.size for slot in holder.slots_for(var).values())
    return total


def keras_bytes(name: str, variables: Sequence) -> int | None:
    """The bytes of the variables Keras's counterpart builds on these variables, but its step
    counter and learning rate; None when Keras has none."""
    import keras
    import numpy as np

    if name not in KERAS:
        return None
    class_name, arguments = KERAS[name]
    opt = getattr(keras.optimizers, class_name)(**arguments)
    opt.build(variables)
    skipped = {id(opt.iterations), id(getattr(opt, "_learning_rate", None))}
    return sum(
        _size(v.shape) * np.dtype(v.dtype).itemsize for v in opt.variables if id(v) not in skipped
    )


def least_bytes(name: str, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The least state of a built-in's algorithm on variables of these shapes, in bytes."""
    return MINIMUM[name].floats(shapes) * FLOAT32


@attrs.frozen
class Row:
    """One optimizer's figures."""

    name: str
    optreg: int
    least: int
    keras: int | None

    @property
    def over_least(self) -> float:
        """optreg / least (1 when both are zero)."""
        return self.optreg / self.least if self.least else float(self.optreg == 0) or float("inf")

    @property
    def over_keras(self) -> float | None:
        """optreg / Keras, or None without a counterpart (1 when both are zero)."""
        if self.keras is None:
            return None
        return self.optreg / self.keras if self.keras else float(self.optreg == 0) or float("inf")

    @property
    def fits(self) -> bool:
        """At most :data:`TOLERANCE` × the least and × Keras's (nadam keeps its one number per
        variable where Keras keeps one in all)."""
        return self.over_least <= TOLERANCE and (self.keras is None or self.optreg <= TOLERANCE * self.keras)


def measure(shapes: Mapping[str, tuple[int, ...]], names: Sequence[str] | None = None) -> list[Row]:
    """Build every named built-in (all of :data:`MINIMUM` by default), and Keras's counterparts,
    one at a time on the same variables."""
    variables = keras_variables(shapes)
    rows = []
    for name in names or sorted(MINIMUM):
        ours = optreg_bytes(name, variables)
        gc.collect()
        theirs = keras_bytes(name, variables)
        gc.collect()
        rows.append(Row(name, ours, least_bytes(name, shapes), theirs))
    return rows


def _megabytes(count: int | None) -> str:
    """Bytes as MB (10**6), with enough digits for the small ones."""
    if count is None:
        return "—"
    return f"{count / 1e6:.1f}" if count >= 1e6 else f"{count / 1e6:.3f}"


def _ratio(value: float) -> str:
    """A ratio with two decimals, four below 0.01."""
    return f"{value:.2f}×" if value >= 0.01 else f"{value:.4f}×"


def table(rows: Sequence[Row]) -> str:
    """The figures as a Markdown table."""
    lines = [
        "| optimizer | optreg MB | least MB | optreg / least | Keras MB | optreg / Keras | the least state |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        over_keras = "—" if row.over_keras is None else _ratio(row.over_keras)
        lines.append(
            f"| {row.name} | {_megabytes(row.optreg)} | {_megabytes(row.least)} | {_ratio(row.over_least)} "
            f"| {_megabytes(row.keras)} | {over_keras} | {MINIMUM[row.name].what} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Measure, print the table, and with ``--check`` exit 1 when an optimizer misses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1, help="divide every dimension by this")
    parser.add_argument("--check", action="store_true", help="exit 1 when an optimizer keeps too much")
    arguments = parser.parse_args()
    shapes = scaled(BLOCK, arguments.scale)
    print(f"{sum(map(_size, shapes.values())) / 1e6:.1f}M float32 parameters in {len(shapes)} variables")
    rows = measure(shapes)
    print(table(rows))
    missed = [row.name for row in rows if not row.fits]
    if missed:
        print(f"more than {TOLERANCE}× the least or than Keras: {', '.join(missed)}")
    if arguments.check and missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
