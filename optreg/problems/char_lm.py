"""``char-lm``: a tiny character-level language model of a shipped public-domain text.

The text is Lincoln's Gettysburg Address (1863, the Bliss copy; ``data/gettysburg.txt``,
origin in ``data/README.md``), lower-cased with its whitespace collapsed to single spaces:
1473 characters over 27 symbols. The model reads the ``context`` characters before each
position through a shared embedding, then a tanh layer, and predicts the next character by a
softmax. It trains on the first 80% of the positions, in nats per character. The text is too
short to generalise from (1175 training characters): a model that fits it memorises it, and
the held-out loss of the last 20% rises while the training loss falls (a 32-unit model under
Adam: training 0.25, held-out 5.9 after 500 full-batch iterations at lr 0.01; the training
text's character frequencies score 2.88 held out). So this problem is an optimisation
workload: its target is on the training loss, and the held-out loss is reported to show the
overfitting.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from optreg.errors import OptionError
from optreg.problems import MAX_DIMENSION, Problem, Tensor
from optreg.problems.networks import Block, Layout, batched, cross_entropy, training_losses
from optreg.problems.targets import Target

__all__ = ["CHAR_LM", "CHAR_LM_TARGET", "char_lm", "char_lm_layout", "char_logits", "load_text", "text_windows"]

TEXT_FILE = Path(__file__).parent / "data" / "gettysburg.txt"
#: The figure a run counts as reaching: training cross-entropy, nats per character.
CHAR_LM_TARGET = Target("train_loss", 1.0)
#: Most context characters, and the widest embedding and hidden layer (the parameters must
#: also stay within MAX_DIMENSION).
MAX_CONTEXT, MAX_WIDTH = 16, 256
#: The share of the text's positions that train (the rest, at the end, are the test set).
TRAIN_SHARE = 0.8


@lru_cache(maxsize=1)
def load_text() -> tuple[str, str]:
    """The normalised text and its alphabet (sorted distinct characters).

    Example:
        >>> text, alphabet = load_text()
        >>> len(text), len(alphabet), text[:9]
        (1473, 27, 'four scor')
    """
    text = " ".join(TEXT_FILE.read_text(encoding="utf-8").lower().split())
    return text, "".join(sorted(set(text)))


@lru_cache(maxsize=MAX_CONTEXT)
def text_windows(context: int) -> tuple[Any, ...]:
    """The training and test examples: for every position with ``context`` characters before
    it, those characters' indices and the next one's.

    Returns:
        ``(train_contexts [n, context], train_next [n], test_contexts, test_next)``, int32
        NumPy arrays; the first 80% of the positions train.

    Example:
        >>> x_train, y_train, x_test, y_test = text_windows(4)
        >>> x_train.shape[1], len(y_train) + len(y_test)
        (4, 1469)
    """
    import numpy as np

    text, alphabet = load_text()
    codes = np.array([alphabet.index(c) for c in text], np.int32)
    contexts = np.stack([codes[i : len(codes) - context + i] for i in range(context)], axis=1)
    following = codes[context:]
    cut = int(TRAIN_SHARE * len(following))
    return contexts[:cut], following[:cut], contexts[cut:], following[cut:]


def char_lm_layout(context: int, embedding: int, hidden: int, symbols: int) -> Layout:
    """An embedding table shared by the context positions, a tanh layer and the softmax layer.

    Example:
        >>> char_lm_layout(4, 8, 32, 27).size
        2163
    """
    return Layout(
        (
            Block("embedding", (symbols, embedding), fans=(symbols, embedding)),
            Block("hidden_weights", (context * embedding, hidden), fans=(context * embedding, hidden)),
            Block("hidden_bias", (hidden,)),
            Block("output_weights", (hidden, symbols), fans=(hidden, symbols)),
            Block("output_bias", (symbols,)),
        )
    )


def char_logits(blocks: dict[str, Tensor], contexts: Tensor) -> Tensor:
    """``[runs, examples, symbols]`` next-character logits of every run's model for
    ``[examples, context]`` character indices (the embedding lookup is a product with their
    one-hot codes, so all runs share one batched matrix product)."""
    import tensorflow as tf

    table = blocks["embedding"]
    symbols, width = table.shape[-2], table.shape[-1]
    codes = tf.one_hot(contexts, symbols, dtype=table.dtype)
    embedded = tf.einsum("ncv,rve->rnce", codes, table)
    flat = tf.reshape(embedded, [-1, tf.shape(contexts)[0], contexts.shape[-1] * width])
    hidden = tf.tanh(tf.einsum("rnq,rqh->rnh", flat, blocks["hidden_weights"]) + blocks["hidden_bias"][:, None, :])
    return tf.einsum("rnh,rhv->rnv", hidden, blocks["output_weights"]) + blocks["output_bias"][:, None, :]


def char_lm(context: int = 4, embedding: int = 8, hidden: int = 32, batch_size: int = 0, seed: int = 0) -> Problem:
    """The language model as a problem.

    Args:
        context: how many characters it reads before each prediction.
        embedding: each character's embedding width.
        hidden: the tanh layer's width.
        batch_size: minibatch size, reshuffled every epoch; 0 trains full-batch.
        seed: draws the Glorot-uniform start and the minibatch order.

    Returns:
        The :class:`Problem`; its metrics are ``train_loss``, ``test_loss`` (nats per
        character), ``baseline_test_loss`` (the training text's character frequencies, add-one
        smoothed) and ``target_met``.

    Example:
        >>> char_lm().dimension
        2163
    """
    context, embedding, hidden = int(context), int(embedding), int(hidden)
    batch_size, seed = int(batch_size), int(seed)
    text, alphabet = load_text()
    train_rows = int(TRAIN_SHARE * (len(text) - context))
    if not 1 <= context <= MAX_CONTEXT or not 1 <= embedding <= MAX_WIDTH or not 1 <= hidden <= MAX_WIDTH:
        raise OptionError(
            f"char-lm needs 1 <= context <= {MAX_CONTEXT} and 1 <= embedding, hidden <= {MAX_WIDTH}, "
            f"got {context}, {embedding} and {hidden}"
        )
    if not 0 <= batch_size <= train_rows or not -(2**31) <= seed < 2**31:
        raise OptionError(
            f"char-lm needs 0 <= batch_size <= {train_rows} and a seed that fits in int32, got {batch_size} and {seed}"
        )
    layout = char_lm_layout(context, embedding, hidden, len(alphabet))
    if layout.size > MAX_DIMENSION:
        raise OptionError(f"char-lm would have {layout.size} parameters, more than {MAX_DIMENSION}")

    def split_loss(parameters: Tensor, x: Any, y: Any) -> Tensor:
        return batched(parameters, lambda flat: cross_entropy(char_logits(layout.unpack(flat), x), y, len(alphabet)))

    loss, batch_loss = training_losses(split_loss, lambda: text_windows(context)[:2], seed, train_rows, batch_size)

    def metrics(parameters: Tensor) -> dict[str, Any]:
        import numpy as np

        x_train, y_train, x_test, y_test = text_windows(context)
        points = np.asarray(parameters, np.float32).reshape(-1, layout.size)
        counts = np.bincount(y_train, minlength=len(alphabet)) + 1.0
        baseline = -float(np.mean(np.log(counts[y_test] / counts.sum())))
        test = np.asarray(split_loss(points, x_test, y_test), np.float64)
        figures = {
            "train_loss": np.asarray(split_loss(points, x_train, y_train), np.float64),
            "test_loss": test,
            "baseline_test_loss": np.full(len(test), baseline),
        }
        return CHAR_LM_TARGET.with_verdict(figures)

    batches = f"minibatches of {batch_size}" if batch_size else "full batch"
    return Problem(
        name="char-lm",
        summary=f"A character-level language model of the Gettysburg Address ({context} characters of context, "
        f"{hidden} tanh units), {batches}; target {CHAR_LM_TARGET}",
        start=layout.glorot_start(seed),
        loss=loss,
        batch_loss=batch_loss if batch_size else None,
        metrics=metrics,
        tolerance=0.0,
        target=CHAR_LM_TARGET,
        target_figure=loss,
        options={"context": context, "embedding": embedding, "hidden": hidden, "batch_size": batch_size, "seed": seed},
        configure=char_lm,
    )


CHAR_LM = char_lm()
