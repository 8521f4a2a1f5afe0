"""Hyperparameters that follow a schedule.

Any hyperparameter, not only the learning rate, may be given as

* a ``keras.optimizers.schedules.LearningRateSchedule`` (called with the step counter), or
* any callable: of one argument, the step counter, or of none (as Keras allows for the
  learning rate).

The step counter is the optimizer's ``iterations`` before the step (0 on the first), an int64
tensor, as Keras passes it. The schedule is evaluated once per update step, inside the step
(so it is traced with it: write it with TensorFlow operations), and its value, cast to float64,
is assigned to the hyperparameter's variable before the step program runs, so the update rule,
weight decay and Python optimizers all read the scheduled value there.

Only Keras schedules (which have ``get_config``) can be written into an optimizer config.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from optreg.errors import OptionError


def is_schedule(value: Any) -> bool:
    """True for a schedule or callable (not a number, bool, tensor or variable).

    Example:
        >>> is_schedule(lambda step: 0.1), is_schedule(0.1)
        (True, False)
    """
    return callable(value) and not isinstance(value, type)


def split_schedules(given: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Callable[..., Any]]]:
    """Split hyperparameter values into plain values and schedules.

    Example:
        >>> plain, scheduled = split_schedules({"learning_rate": abs, "beta_1": 0.9})
        >>> plain, list(scheduled)
        ({'beta_1': 0.9}, ['learning_rate'])
    """
    plain = {name: value for name, value in given.items() if not is_schedule(value)}
    scheduled = {name: value for name, value in given.items() if is_schedule(value)}
    return plain, scheduled


def takes_step(schedule: Callable[..., Any]) -> bool:
    """Whether to call a schedule with the step (True) or with no argument (False).

    Example:
        >>> takes_step(lambda: 0.1), takes_step(lambda step: 0.1)
        (False, True)
    """
    try:
        parameters = inspect.signature(schedule).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.VAR_POSITIONAL
    )
    return any(p.kind in positional for p in parameters)


def evaluate(schedule: Callable[..., Any], step: Any) -> Any:
    """A schedule's value at ``step`` (the int64 step counter), as a float64 scalar tensor.

    Example:
        >>> import tensorflow as tf  # doctest: +SKIP
        >>> evaluate(lambda step: 0.1 * 0.5 ** tf.cast(step, tf.float64), tf.constant(2, tf.int64))  # doctest: +SKIP
        <tf.Tensor: shape=(), dtype=float64, numpy=0.025>
    """
    import tensorflow as tf

    value = schedule(step) if takes_step(schedule) else schedule()
    return tf.cast(value, tf.float64)


def schedule_config(name: str, schedule: Callable[..., Any]) -> dict[str, Any]:
    """A config entry for a schedule: Keras's serialization of it, under ``"schedule"``.

    Raises:
        OptionError: the callable is not a Keras schedule, so it cannot be written out.
    """
    if not hasattr(schedule, "get_config"):
        raise OptionError(
            f"{name} follows a plain callable, which a config cannot hold; use a "
            "keras.optimizers.schedules.LearningRateSchedule to save it"
        )
    import keras

    return {"schedule": keras.optimizers.schedules.serialize(schedule)}


def schedule_from_config(value: Any, name: str = "a hyperparameter") -> Any:
    """The schedule a config entry describes, or the value itself when it is a plain number.

    Only a ``keras.optimizers.schedules.LearningRateSchedule`` is taken from a config: an entry
    that deserializes to anything else (another Keras callable), or not at all, is refused.

    Raises:
        OptionError: the entry is not exactly ``{"schedule": ...}`` or is no schedule.

    Example:
        >>> schedule_from_config(0.1)
        0.1
    """
    if not isinstance(value, Mapping):
        return value
    if set(value) != {"schedule"}:
        raise OptionError(
            f"{name}: a scheduled hyperparameter's config is {{'schedule': ...}}, got keys {sorted(map(str, value))}"
        )
    import keras

    try:
        schedule = keras.optimizers.schedules.deserialize(value["schedule"])
    except Exception as error:  # Keras raises whatever its deserializer meets
        message = f"{name}: its schedule cannot be rebuilt: {type(error).__name__}: {error}"
        raise OptionError(message.splitlines()[0]) from None
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        raise OptionError(
            f"{name}: a config's schedule must be a keras.optimizers.schedules.LearningRateSchedule, "
            f"got {type(schedule).__name__}"
        )
    return schedule
