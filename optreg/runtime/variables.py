"""Variables and gradients as an optimizer receives them, and the strategy it refuses.

* :func:`tf_variable` and :func:`variable_path`: the ``tf.Variable`` behind a Keras 3 variable,
  and the path Keras names it by;
* :func:`split_pairs` and :func:`dense_gradient`: both calling forms of ``apply_gradients``
  normalised into dense gradients and their variables;
* :func:`initial_value` and :func:`slot_shape`: a slot's starting value and shape;
* :func:`refuse_parameter_servers`: the one distribution strategy optreg's updates would go
  wrong under.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import tensorflow as tf

from optreg.errors import OptionError
from optreg.model.definitions import Slot
from optreg.spec.variable_slots import slot_dims

#: The strategy classes whose workers update variables asynchronously through parameter
#: servers: ``tf.distribute.experimental.ParameterServerStrategy`` (ParameterServerStrategyV2)
#: and TensorFlow 1's, where TensorFlow still has them.
PARAMETER_SERVER_STRATEGIES = tuple(
    cls
    for cls in (
        getattr(tf.distribute.experimental, "ParameterServerStrategy", None),
        getattr(getattr(tf.compat.v1.distribute, "experimental", None), "ParameterServerStrategy", None),
    )
    if isinstance(cls, type)
)

PARAMETER_SERVER_MESSAGE = (
    "ParameterServerStrategy is not supported by optreg's own optimizers: its workers apply steps "
    "asynchronously, and optreg's updates assign each variable and slot a value computed from a "
    "read another step may have made stale, so updates could be lost. Train synchronously with "
    "MultiWorkerMirroredStrategy across machines (MirroredStrategy on one)"
)


def refuse_parameter_servers(strategy: Any, message: str = PARAMETER_SERVER_MESSAGE) -> None:
    """Refuse a ParameterServerStrategy, the one strategy optreg's updates would go wrong under.

    Args:
        strategy: the current strategy (``tf.distribute.get_strategy()``).
        message: the error's message (by default, the one of optreg's own optimizers).

    Raises:
        OptionError: ``strategy`` is a ParameterServerStrategy.

    Example:
        >>> refuse_parameter_servers(tf.distribute.get_strategy())  # the default: accepted
    """
    if isinstance(strategy, PARAMETER_SERVER_STRATEGIES):
        raise OptionError(message)


def split_pairs(
    grads_and_vars: Iterable[Any], variables: Iterable[Any] | None, keep_sparse: bool = False
) -> tuple[list[Any], list[Any]]:
    """Normalise both calling forms into two lists, dropping pairs with a None gradient; the
    gradients dense, or with ``keep_sparse`` each ``tf.IndexedSlices`` as it came.

    Example:
        >>> grads, variables = split_pairs([(None, "a"), (1.0, "b")], None)
        >>> len(grads), variables
        (1, ['b'])
    """
    if variables is None:
        pairs = list(grads_and_vars)
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError("apply_gradients expects (gradient, variable) pairs or apply_gradients(grads, vars)")
    else:
        grads, variables = list(grads_and_vars), list(variables)
        if len(grads) != len(variables):
            raise ValueError(f"apply_gradients got {len(grads)} gradients for {len(variables)} variables")
        pairs = list(zip(grads, variables))
    kept = [(grad, var) for grad, var in pairs if grad is not None]
    grads = [grad if keep_sparse and isinstance(grad, tf.IndexedSlices) else dense_gradient(grad) for grad, _ in kept]
    return grads, [var for _, var in kept]


def dense_gradient(grad: Any) -> tf.Tensor:
    """A dense tensor for a gradient (IndexedSlices are densified).

    Example:
        >>> dense_gradient([1.0, 2.0]).numpy()
        array([1., 2.], dtype=float32)
    """
    if isinstance(grad, tf.IndexedSlices):
        return tf.convert_to_tensor(grad)
    return grad if tf.is_tensor(grad) else tf.convert_to_tensor(grad)


def tf_variable(var: Any) -> Any:
    """The ``tf.Variable`` behind a Keras 3 variable on the TensorFlow backend (what
    ``model.trainable_variables`` holds); any other variable as it is.

    Example:
        >>> import keras
        >>> type(tf_variable(keras.Variable(1.0))).__name__
        'ResourceVariable'
    """
    if isinstance(var, tf.Variable):
        return var
    held = getattr(var, "value", None)
    return held if isinstance(held, tf.Variable) else var


def variable_path(var: Any) -> str:
    """A variable's path as Keras names it (``"dense/kernel"``), or its TensorFlow name.

    Example:
        >>> variable_path(tf.Variable(1.0, name="head/bias"))
        'head/bias:0'
    """
    return str(getattr(var, "path", None) or var.name)


def initial_value(
    slot: Slot,
    var: Any,
    override: str | None = None,
    hyperparameters: Mapping[str, tf.Variable] | None = None,
    run_shape: list[int] | None = None,
) -> tf.Tensor:
    """A slot's starting value for one variable, in the overriding, the spec's or the variable's
    dtype: a copy of the variable, a number, or a hyperparameter's current value (one per stacked
    run when the hyperparameter holds one per run). With stacked runs (``run_shape``), a scalar
    slot holds one number per run.

    Args:
        slot: the slot.
        var: the variable (a ``tf.Variable`` or a Keras variable).
        override: a dtype overriding the spec's and the variable's.
        hyperparameters: hyperparameter name → its value (a variable or a tensor).
        run_shape: the run shape once runs are stacked.

    Returns:
        The tensor the slot starts at.

    Example:
        >>> initial_value(Slot("acc", init=0.1), tf.Variable([1.0, 2.0])).numpy()
        array([0.1, 0.1], dtype=float32)
    """
    dtype = tf.as_dtype(override or slot.dtype or var.dtype)
    shape = run_shape if slot.shape == "scalar" and run_shape else slot_shape(slot.shape, var.shape)
    if slot.init == "var":
        return tf.cast(tf.convert_to_tensor(var), dtype)
    if hyperparameters is not None and isinstance(slot.init, str) and slot.init in hyperparameters:
        return tf.broadcast_to(tf.cast(hyperparameters[slot.init], dtype), shape)
    fill = {"zeros": 0.0, "ones": 1.0}.get(str(slot.init), slot.init)
    return tf.fill(shape, tf.constant(fill, dtype))


def slot_shape(kind: str, shape: tf.TensorShape) -> list[int]:
    """The shape of a slot of the given kind (see :data:`optreg.model.definitions.SLOT_SHAPES`) for a
    variable: :func:`optreg.spec.variable_slots.slot_dims` of its static shape.

    Example:
        >>> slot_shape("rows", tf.TensorShape([2, 3, 4])), slot_shape("columns", tf.TensorShape([7]))
        ([2, 3, 1], [])
        >>> slot_shape("channels", tf.TensorShape([3, 3, 8, 16])), slot_shape("col_gram", tf.TensorShape([3, 4]))
        ([1, 1, 1, 16], [4, 4])
    """
    return slot_dims(kind, shape.as_list())
