"""``optreg validate``: check spec files without running them (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from optreg.errors import SpecError
from optreg.spec.reader import load_spec, spec_files


def validate_paths(paths: Iterable[str | Path]) -> list[tuple[str, SpecError | None]]:
    """Load and check every spec file named, or found directly inside a named folder.

    Args:
        paths: spec files and folders.

    Returns:
        ``(path, None)`` for each valid spec, ``(path, error)`` for each invalid one, where
        ``error.errors`` holds every error of the file; a path that does not exist, or a folder
        without specs, is an error too.

    Example:
        >>> [(p.endswith("adam.toml"), e) for p, e in validate_paths(["specs/adam.toml"])]  # doctest: +SKIP
        [(True, None)]
    """
    results: list[tuple[str, SpecError | None]] = []
    for path in map(Path, paths):
        files = spec_files(path)
        if not files:
            results.append((str(path), SpecError(str(path), "", "folder holds no *.toml spec")))
        for file in files:
            results.append((str(file), _check(file)))
    return results


def _check(file: Path) -> SpecError | None:
    if not file.exists():
        return SpecError(str(file), "", "no such file")
    try:
        load_spec(file)
    except SpecError as error:
        return error
    return None
