"""Import TensorFlow for the command line without its start-up chatter on stderr.

TensorFlow's C++ runtime prints a dozen lines when it starts (oneDNN, CUDA drivers, CPU
features, a failed ``cuInit``, the XLA service), some of them before its log level is read, so
``TF_CPP_MIN_LOG_LEVEL`` alone cannot hide them. Unless the user asked for them (``OPTREG_DEBUG``
or their own ``TF_CPP_MIN_LOG_LEVEL``), :func:`import_tensorflow` sets the level to 3, sends the
process's stderr to a buffer while TensorFlow loads, and sets TensorFlow's Python logger to
errors only. If the import fails, the buffered lines are written out before the error, so
nothing that explains a broken installation is lost.

Only the command line calls this; a program that imports optreg keeps TensorFlow's own defaults.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from optreg.errors import OptregError
from optreg.settings import debug_requested


def wants_tensorflow_logs() -> bool:
    """Whether the user asked to see TensorFlow's logs: ``OPTREG_DEBUG=1`` or their own
    ``TF_CPP_MIN_LOG_LEVEL``.

    Example:
        >>> isinstance(wants_tensorflow_logs(), bool)
        True
    """
    return debug_requested() or "TF_CPP_MIN_LOG_LEVEL" in os.environ


def import_tensorflow() -> None:
    """Import TensorFlow (once per process), quietly unless :func:`wants_tensorflow_logs`.

    Raises:
        OptregError: TensorFlow cannot be imported; what it printed while trying is on stderr.

    Example:
        >>> import_tensorflow()  # doctest: +SKIP
    """
    if "tensorflow" in sys.modules or wants_tensorflow_logs():
        import tensorflow  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with tempfile.TemporaryFile() as buffer:
        error = _import_with_stderr_in(buffer)
        if error is not None:
            buffer.seek(0)
            sys.stderr.buffer.write(buffer.read())
            sys.stderr.flush()
            raise OptregError(f"TensorFlow cannot be imported: {type(error).__name__}: {error}") from error
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def _import_with_stderr_in(buffer: Any) -> Exception | None:
    """Import TensorFlow with file descriptor 2 pointing at ``buffer``; the import's error, or
    None when it succeeded."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(buffer.fileno(), 2)
    try:
        import tensorflow  # noqa: F401
    except Exception as error:  # noqa: BLE001 (any failure to import is reported whole)
        return error
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return None
