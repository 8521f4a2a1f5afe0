"""The one error hierarchy of optreg.

Every error optreg raises on purpose is an :class:`OptregError`; the command line turns it
into one line on stderr. Each subclass says *where* the problem is as well as *what* it is.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


class OptregError(Exception):
    """Base class of every error optreg raises on purpose.

    ``exit_code`` is the status the command line exits with: 1 for invalid input (a bad
    spec, a broken plugin), 2 for a bad request (an unknown name, a bad option value).
    """

    exit_code = 1
    #: Raised inside a user's ``tf.function``, the error reaches the caller as itself: AutoGraph
    #: would otherwise re-raise it as a ``StagingError`` with its message inside a stack dump.
    ag_pass_through = True


class SpecError(OptregError):
    """A spec file (or spec text) is malformed.

    Args:
        source: the file the spec came from (or ``"<string>"``).
        key: the dotted TOML key where the problem is, e.g. ``hyperparameters.beta_1``
            or ``update.rule[2]``; empty when the whole file is at fault.
        message: what is wrong.
        line: the 1-based line in the file, where known.

    Example:
        >>> str(SpecError("specs/adam.toml", "hyperparameters.beta_1", "max must be a number"))
        'specs/adam.toml: [hyperparameters.beta_1] max must be a number'
    """

    def __init__(self, source: str, key: str, message: str, line: int | None = None):
        self.source = str(source)
        self.key = key
        self.message = message
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        key = f" [{self.key}]" if self.key else ""
        return f"{where}:{key} {self.message}"

    @property
    def errors(self) -> tuple[SpecError, ...]:
        """Every error found in the spec, this one first: only itself unless the loader
        collected several (see :class:`SpecErrors`)."""
        return (self,)


class SpecErrors(SpecError):
    """Several errors of one spec, as the loader collects them: it reads as the first (its
    source, key, line, message and one-line text) and holds them all in :attr:`errors`.

    Example:
        >>> both = SpecErrors([SpecError("x.toml", "a", "bad", 2), SpecError("x.toml", "b", "worse", 5)])
        >>> str(both), [str(e) for e in both.errors][1]
        ('x.toml:2: [a] bad', 'x.toml:5: [b] worse')
    """

    def __init__(self, errors: Sequence[SpecError]):
        first = errors[0]
        super().__init__(first.source, first.key, first.message, first.line)
        self._errors = tuple(errors)

    @property
    def errors(self) -> tuple[SpecError, ...]:
        """Every error, in the order given (the loader's: file order)."""
        return self._errors


class RuleError(SpecError):
    """A rule line fails when its TensorFlow ops are built for a variable (traced): a shape
    that does not fit, say. It names the file, the rule line and what is wrong, in one line.

    Args:
        source: the spec file.
        line: the 1-based line of the rule line in the file, where known.
        rule_line: the 1-based position of the line in the rule.
        text: the rule line as written.
        problem: what is wrong.

    Example:
        >>> str(RuleError("specs/x.toml", 14, 3, "g = matmul(grad, grad)", "grad has rank 1"))
        'specs/x.toml:14: [update] rule line 3 "g = matmul(grad, grad)": grad has rank 1'
    """

    def __init__(self, source: str, line: int | None, rule_line: int, text: str, problem: str):
        self.rule_line = rule_line
        self.text = text
        self.problem = problem
        super().__init__(source, "update", f'rule line {rule_line} "{text}": {problem}', line)


class HyperparameterError(OptregError, ValueError):
    """A hyperparameter is unknown, of the wrong type, or outside its bounds."""

    exit_code = 2


class UnknownNameError(OptregError, LookupError):
    """A name (of an optimizer, a problem, …) is not registered.

    Args:
        kind: what was looked up, e.g. ``"optimizer"``.
        name: the name asked for.
        known: every name that is registered, for suggestions.

    Example:
        >>> str(UnknownNameError("optimizer", "adan", ["adam", "sgd"]))
        "unknown optimizer 'adan'; did you mean 'adam'?"
    """

    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]):
        self.kind = kind
        self.name = name
        self.suggestions = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"unknown {self.kind} {self.name!r}"
        if self.suggestions:
            text += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        return text

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return self._render()


class AmbiguousNameError(OptregError, LookupError):
    """A short name is defined by several sources; the qualified ``SOURCE:NAME`` is needed.

    Example:
        >>> str(AmbiguousNameError("optimizer", "lion", ["optreg-lion", "optreg-extra"]))
        "optimizer 'lion' is defined by optreg-lion and optreg-extra; use optreg-lion:lion or optreg-extra:lion"
    """

    exit_code = 2

    def __init__(self, kind: str, name: str, sources: list[str]):
        self.kind = kind
        self.name = name
        self.sources = list(sources)
        super().__init__(self._render())

    def _render(self) -> str:
        qualified = " or ".join(f"{source}:{self.name}" for source in self.sources)
        return f"{self.kind} {self.name!r} is defined by {' and '.join(self.sources)}; use {qualified}"

    def __str__(self) -> str:
        return self._render()


class PluginError(OptregError):
    """A plugin failed to load or misbehaved; the message names the plugin."""


class OutputError(OptregError):
    """An output of ``optreg bench`` (``--out``, ``--plot``) cannot be written where asked:
    found before anything is computed."""

    exit_code = 2


class OptionError(OptregError, ValueError):
    """An optimizer option (``clipnorm``, ``clipvalue``, …) is invalid or conflicts with another."""

    exit_code = 2


class ExpressionError(OptregError):
    """An update-rule expression is outside the language; the spec loader adds file and key.

    Args:
        message: what is wrong.
        line_index: the 0-based index of the rule line at fault, where known.
    """

    def __init__(self, message: str, line_index: int | None = None):
        self.message = message
        self.line_index = line_index
        super().__init__(message)


class CheckpointError(OptregError):
    """A checkpoint's saved optimizer state does not fit the optimizer it is restored into."""

    exit_code = 1
