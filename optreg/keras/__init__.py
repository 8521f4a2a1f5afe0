"""The Keras adapter: any spec optimizer as a ``keras.optimizers.Optimizer``.

``optreg.keras.optimizer("adam", learning_rate=1e-3)`` (or a path to a TOML spec) gives an
optimizer for ``model.compile(optimizer=...)`` and ``model.fit`` on the TensorFlow backend.
Keras's own options work as with any Keras optimizer — ``clipnorm``, ``clipvalue``,
``global_clipnorm``, ``weight_decay``, ``use_ema``, ``ema_momentum``,
``ema_overwrite_frequency``, ``loss_scale_factor``, ``gradient_accumulation_steps`` — and
``learning_rate`` may be a ``LearningRateSchedule``; so may every other hyperparameter, evaluated
at Keras's step counter as optreg's own optimizers do (:mod:`optreg.model.schedules`). The spec's
``[options]`` table gives defaults for Keras's options (``weight_decay = 0.004`` for AdamW).
``exclude_layers`` and ``exclude_embeddings`` choose what a rule's ``excluded(var)`` selects, by
the Keras variable's path, as Keras's Muon does; a rule that reads ``weight_decay`` applies the
decay itself and Keras's own decay step then leaves its variables alone. The
class is registered with Keras's
serialization, and its config carries the spec's text, so a saved ``.keras`` model reloads with
the same optimizer and state on a machine that has never seen the spec file.

The adapter runs the spec's compiled rule itself rather than op by op through Keras's
``update_step``: a step's dense updates as one XLA computation (``jit_compile``, as optreg's
own optimizers), a sparse gradient on its touched rows (``sparse_updates``), see
:mod:`optreg.keras.updates`.
"""

from optreg.keras.adapter import KERAS_PARAMETER_SERVER_MESSAGE, SpecOptimizer, optimizer

__all__ = ["KERAS_PARAMETER_SERVER_MESSAGE", "SpecOptimizer", "optimizer"]
