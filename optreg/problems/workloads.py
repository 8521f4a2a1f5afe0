"""The workload suite: problems on real or generated data, each with a stated target.

``digits-mlp`` and ``digits-cnn`` (:mod:`optreg.problems.digits`) and ``autoencoder``
(:mod:`optreg.problems.autoencoder`) train networks on the shipped digits and state a held-out
target; ``logistic-regression`` and ``noisy-quadratic`` (:mod:`optreg.problems.synthetic`) are
generated, with a known minimum the bench's tolerance judges; ``char-lm``
(:mod:`optreg.problems.char_lm`) fits a shipped public-domain text, its target on the training
loss (the text is too short to generalise from).
"""

from __future__ import annotations

from optreg.problems.autoencoder import AUTOENCODER
from optreg.problems.char_lm import CHAR_LM
from optreg.problems.digits import DIGITS_CNN, DIGITS_MLP
from optreg.problems.synthetic import LOGISTIC_REGRESSION, NOISY_QUADRATIC

__all__ = ["WORKLOAD_PROBLEMS"]

#: The workload problems, as the built-in plugin registers them.
WORKLOAD_PROBLEMS = (DIGITS_MLP, DIGITS_CNN, LOGISTIC_REGRESSION, NOISY_QUADRATIC, AUTOENCODER, CHAR_LM)
