"""Loading specs: ``load_spec`` and ``load_spec_text`` read a spec's TOML into the records of
:mod:`optreg.model.definitions`, key by key, reporting every error with its file, line and key. Like the
rest of loading, it never imports TensorFlow.

This module guards the input (a regular file, at most :data:`MAX_SPEC_BYTES`, opened without
blocking) and parses the TOML; :class:`~optreg.spec.document.SpecReader` reads the document.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

from optreg.errors import SpecError
from optreg.model.definitions import OptimizerSpec
from optreg.spec.document import SpecReader

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: The largest spec file (and spec text) read, in bytes: 1 MiB, about 200 times the largest
#: built-in spec (``specs/muon.toml``, 5.3 KB). A larger file is refused before it is read.
MAX_SPEC_BYTES = 1 << 20


def read_spec_text(text: str, source: str = "<string>") -> OptimizerSpec:
    """Parse and validate spec text (what :func:`load_spec_text` does).

    Raises:
        SpecError: the TOML does not parse, or the spec is invalid (every error, in file order).

    Example:
        >>> try:
        ...     read_spec_text("[optimizer]\\nname = 'x'")
        ... except SpecError as error:
        ...     print(*error.errors, sep="\\n")
        <string>: [update] missing required key 'update'
        <string>: [optimizer.summary] missing required key 'summary'
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(source, "", f"TOML syntax error: {error}", line=_toml_error_line(error, text)) from None
    except (RecursionError, ValueError) as error:
        raise SpecError(source, "", f"TOML cannot be read: {type(error).__name__}") from None
    return SpecReader(text, source).read(document)


def _toml_error_line(error: Exception, text: str) -> int | None:
    """The line a TOML syntax error is on: from ``lineno`` (Python 3.14) or the message's
    "(at line N, column M)"; an error "at end of document" (an array, table or string left
    open) is on the last line.

    Example:
        >>> _toml_error_line(ValueError("Invalid value (at line 3, column 11)"), "")
        3
        >>> _toml_error_line(ValueError("Unclosed array (at end of document)"), "rule = [")
        1
    """
    line = getattr(error, "lineno", None)
    if line is None:
        found = re.search(r"at line (\d+)", str(error))
        line = int(found.group(1)) if found else None
    if line is None and "at end of document" in str(error):
        line = max(1, len(text.splitlines()))
    return line


def load_spec(path: str | Path) -> OptimizerSpec:
    """Load and validate one spec file.

    Args:
        path: the TOML file.

    Returns:
        The validated :class:`OptimizerSpec`.

    Raises:
        SpecError: the file cannot be read or is not a valid spec; the message names the
            file, the key and, where it can be found, the line.

    Example:
        >>> load_spec("specs/adam.toml").name  # doctest: +SKIP
        'adam'
    """
    path = Path(path)
    try:
        _check_spec_file(path)
        # non-blocking, in case the path became a FIFO since its stat; a file grown since is cut off
        with open(path, "rb", opener=_open_nonblocking) as handle:
            _check_spec_file(path, os.fstat(handle.fileno()))
            data = handle.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(str(path), "", _too_large(len(data), "file"))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), "", f"cannot read the spec: {error}") from None
    return load_spec_text(text, source=str(path))


def _check_spec_file(path: Path, status: os.stat_result | None = None) -> None:
    """Refuse, from ``os.stat`` alone (so nothing blocks), a path that is not a regular file
    (a FIFO, a device, a folder) or is larger than :data:`MAX_SPEC_BYTES`.

    Args:
        path: the spec's path.
        status: its ``os.stat`` (or ``os.fstat`` once opened); taken when not given.

    Raises:
        SpecError: naming the path and what it is; OSError when it cannot be stat'ed.

    Example:
        >>> _check_spec_file(Path("/dev/zero"))
        Traceback (most recent call last):
        ...
        optreg.errors.SpecError: /dev/zero: a spec must be a regular file, got a character device
    """
    status = os.stat(path) if status is None else status
    if not stat.S_ISREG(status.st_mode):
        raise SpecError(str(path), "", f"a spec must be a regular file, got {_file_kind(status.st_mode)}")
    if status.st_size > MAX_SPEC_BYTES:
        raise SpecError(str(path), "", _too_large(status.st_size, "file"))


def _open_nonblocking(path: str, flags: int) -> int:
    """``open``'s opener for spec files: ``os.open`` with ``O_NONBLOCK`` (where it exists), so
    opening something that is not a regular file never waits.

    Example:
        >>> with open("README.md", "rb", opener=_open_nonblocking) as handle:  # doctest: +SKIP
        ...     handle.read(1)
    """
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words, e.g. ``"a FIFO"`` for ``stat.S_IFIFO``."""
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _too_large(size: int, what: str) -> str:
    """The message for a spec beyond :data:`MAX_SPEC_BYTES`.

    Example:
        >>> _too_large(2_000_000, "file")
        'spec file is 2000000 bytes, more than the limit of 1048576 (1 MiB)'
    """
    return f"spec {what} is {size} bytes, more than the limit of {MAX_SPEC_BYTES} (1 MiB)"


def spec_files(path: str | Path) -> list[Path]:
    """The spec files a path names: a folder's ``*.toml`` files in name order, or the path itself.

    Example:
        >>> [p.name for p in spec_files("specs")][:2]  # doctest: +SKIP
        ['adam.toml', 'gradient_descent.toml']
    """
    path = Path(path)
    return sorted(path.glob("*.toml")) if path.is_dir() else [path]


def load_spec_text(text: str, source: str = "<string>") -> OptimizerSpec:
    """Validate spec text (the contents of a TOML file).

    Args:
        text: the TOML text.
        source: what to call it in error messages.

    Returns:
        The validated :class:`OptimizerSpec`.

    Raises:
        SpecError: as :func:`load_spec`; text longer than :data:`MAX_SPEC_BYTES` in UTF-8.
    """
    if not isinstance(text, str):
        raise SpecError(source, "", f"spec text must be a string, got {type(text).__name__}")
    size = (
        len(text) if len(text) > MAX_SPEC_BYTES else len(text.encode("utf-8", "surrogatepass"))
    )  # at least a byte a character
    if size > MAX_SPEC_BYTES:
        raise SpecError(source, "", _too_large(size, "text"))
    return read_spec_text(text, source)
