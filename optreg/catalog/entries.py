"""Registry entries: what is known of an optimizer before it is built, and how to build it."""

from __future__ import annotations

import importlib
from typing import Any

import attrs

from optreg.errors import OptionError, PluginError
from optreg.model.definitions import InnerOptimizer, OptimizerSpec, PythonOptimizer, Slot
from optreg.model.hyperparameters import Hyperparameter


@attrs.frozen
class OptimizerEntry:
    """One registered optimizer.

    Attributes:
        name: the short name.
        source: the plugin's source (``builtin``, ``local``, or the plugin's distribution).
        summary: one line saying what it is.
        hyperparameters: what it accepts, with defaults, bounds and docs.
        references: papers or books.
        spec: the spec it is built from, for spec optimizers.
        factory: ``"module:attribute"`` of its class, for Python optimizers.
        inner: for a wrapper of another optimizer (Lookahead), how it names that one.
        wrapped: the inner optimizer's entry, once a bench has chosen it (:meth:`wrapping`).
    """

    name: str
    source: str
    summary: str
    hyperparameters: tuple[Hyperparameter, ...]
    references: tuple[str, ...] = ()
    spec: OptimizerSpec | None = None
    factory: str | None = None
    inner: InnerOptimizer | None = None
    wrapped: OptimizerEntry | None = None

    @classmethod
    def from_spec(cls, spec: OptimizerSpec, source: str) -> OptimizerEntry:
        """The entry of a spec optimizer."""
        return cls(spec.name, source, spec.summary, spec.hyperparameters, spec.references, spec=spec)

    @classmethod
    def from_python(cls, definition: PythonOptimizer, source: str) -> OptimizerEntry:
        """The entry of a Python optimizer a plugin registered."""
        return cls(
            definition.name, source, definition.summary, definition.hyperparameters,
            definition.references, factory=definition.factory, inner=definition.inner,
        )

    def wrapping(self, inner: OptimizerEntry) -> OptimizerEntry:
        """This wrapper with its inner optimizer chosen, so that it accepts that one's
        hyperparameters too (see :attr:`accepted_hyperparameters`).

        Raises:
            OptionError: this optimizer wraps none, or the inner one is a wrapper itself.
        """
        if self.inner is None:
            raise OptionError(f"{self.name} wraps no other optimizer")
        if inner.inner is not None:
            raise OptionError(
                f"{self.name}: its {self.inner.keyword} optimizer cannot itself be a wrapper ({inner.name})"
            )
        return attrs.evolve(self, wrapped=inner)

    @property
    def accepted_hyperparameters(self) -> tuple[Hyperparameter, ...]:
        """Its own hyperparameters and, for a wrapper whose inner optimizer is chosen, every one
        of the inner optimizer's that it lacks."""
        if self.wrapped is None:
            return self.hyperparameters
        own = {h.name for h in self.hyperparameters}
        return (*self.hyperparameters, *(h for h in self.wrapped.accepted_hyperparameters if h.name not in own))

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The spec's slots (those of the chosen inner optimizer for a wrapper); none for other
        Python optimizers."""
        chosen = self.wrapped or self
        return chosen.spec.slots if chosen.spec is not None else ()

    @property
    def qualified_name(self) -> str:
        """``SOURCE:NAME``, unique across plugins."""
        return f"{self.source}:{self.name}"

    @property
    def origin(self) -> str:
        """Where it is defined: the spec file, or the class's import path."""
        return self.spec.source if self.spec is not None else str(self.factory)

    def defaults(self) -> dict[str, Any]:
        """Every hyperparameter's default, by name."""
        return {h.name: h.default for h in self.hyperparameters}

    def build(self, **kwargs: Any) -> Any:
        """Build the optimizer (imports TensorFlow).

        Args:
            **kwargs: hyperparameters and optimizer options.

        Returns:
            An :class:`optreg.Optimizer`.

        Raises:
            PluginError: a Python optimizer's class cannot be imported, is not an
                :class:`optreg.Optimizer`, or declares other hyperparameters than registered.
        """
        from optreg.runtime import build

        if self.spec is not None:
            optimizer = build.spec_optimizer(self.spec, **kwargs)
        else:
            optimizer = self._build_python(**kwargs)
        optimizer.registry_source = self.source
        return optimizer

    def _build_python(self, **kwargs: Any) -> Any:
        """Import and instantiate a Python optimizer's class, checking it against its registration."""
        optimizer_class = self._import_factory()
        difference = _hyperparameters_differ(tuple(self.hyperparameters), tuple(optimizer_class.hyperparameter_specs))
        if difference:
            raise PluginError(f"{self.qualified_name}: {self.factory} and its registration disagree: {difference}")
        return optimizer_class(**kwargs)

    def _import_factory(self) -> Any:
        from optreg.runtime import build

        module_name, _, attribute = str(self.factory).partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except Exception as error:
            raise PluginError(
                f"{self.qualified_name}: cannot import {self.factory}: {type(error).__name__}: {error}"
            ) from error
        if not build.is_optimizer_class(found):
            raise PluginError(f"{self.qualified_name}: {self.factory} is not an optreg.Optimizer subclass")
        return found


def _hyperparameters_differ(registered: tuple[Hyperparameter, ...], declared: tuple[Hyperparameter, ...]) -> str:
    """What differs between the hyperparameters an optimizer was registered with and those its
    class declares (names, order, defaults, types, bounds, docs), or "" when nothing does.

    Example:
        >>> a = Hyperparameter("learning_rate", 0.01, "float", 0.0, 10.0)
        >>> _hyperparameters_differ((a,), (attrs.evolve(a, default=0.5, max=1.0),))
        'learning_rate is registered with default=0.01, max=10.0, but the class declares default=0.5, max=1.0'
    """
    names = [h.name for h in registered], [h.name for h in declared]
    if names[0] != names[1]:
        return f"registered hyperparameters {names[0]}, declared {names[1]}"
    for mine, theirs in zip(registered, declared):
        fields = [f.name for f in attrs.fields(Hyperparameter) if getattr(mine, f.name) != getattr(theirs, f.name)]
        if fields:
            ours = ", ".join(f"{name}={getattr(mine, name)!r}" for name in fields)
            class_side = ", ".join(f"{name}={getattr(theirs, name)!r}" for name in fields)
            return f"{mine.name} is registered with {ours}, but the class declares {class_side}"
    return ""
