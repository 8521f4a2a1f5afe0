"""Bench outputs written whole: checked before any computing, then swapped into place.

``--out DIR`` is written into a hidden sibling folder and renamed into place at the end, so a
kill leaves the earlier folder or the new one, never a mix of both. A folder a bench wrote holds
a manifest (:data:`MANIFEST_NAME`, listing its files), which is how a later bench knows it may
replace it; any other non-empty folder is refused. ``--plot FILE.png`` is written to a hidden
sibling file and renamed over ``FILE.png`` the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from optreg.errors import OutputError
from optreg.version import __version__

#: The file that marks a folder as written by ``optreg bench`` and lists what it wrote.
MANIFEST_NAME = ".optreg-bench.json"
#: What the manifest's ``written_by`` field holds.
MANIFEST_AUTHOR = "optreg bench"
#: Part of the name of every hidden sibling a bench writes into before renaming it into place.
STAGING_MARK = ".optreg-partial-"


def check_output_folder(folder: Path) -> bool:
    """Check, before any computing, that a bench may write its results into ``folder``.

    Creates the folder's parent if needed and writes a probe into it (the new folder is made
    there, beside the old one).

    Args:
        folder: the ``--out`` folder.

    Returns:
        Whether the folder holds an earlier bench's results (which writing will replace).

    Raises:
        OutputError: the folder is not a folder, holds files no bench wrote, or its parent
            cannot be written.

    Example:
        >>> import tempfile
        >>> check_output_folder(Path(tempfile.mkdtemp()) / "results")
        False
    """
    earlier = _earlier_bench(folder)
    _probe_writable(folder.parent, f"--out {str(folder)!r}")
    return earlier


def check_output_file(path: Path) -> None:
    """Check, before any computing, that a file such as ``--plot`` can be written.

    Args:
        path: the file to write.

    Raises:
        OutputError: it is a folder, or its folder cannot be created or written.

    Example:
        >>> import tempfile
        >>> check_output_file(Path(tempfile.mkdtemp()) / "figures" / "paths.png")
    """
    if path.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: it is a folder")
    _probe_writable(path.parent, str(path))


def write_folder(folder: Path, write: Callable[[Path], Iterable[Path]]) -> tuple[list[Path], bool]:
    """Write a bench folder whole: into a hidden sibling, then renamed over ``folder``.

    Args:
        folder: where the results belong.
        write: writes every file into the folder it is given and returns their paths.

    Returns:
        ``(the files, at their final paths; whether an earlier bench's folder was replaced)``.

    Raises:
        OutputError: as :func:`check_output_folder`.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "out"
        >>> files, replaced = write_folder(target, lambda d: [d / "a.txt"] if (d / "a.txt").write_text("1") else [])
        >>> [p.name for p in files], replaced, sorted(p.name for p in target.iterdir())
        (['a.txt'], False, ['.optreg-bench.json', 'a.txt'])
    """
    replaced = check_output_folder(folder)
    staging = _sibling(folder)
    staging.mkdir()
    try:
        names = [Path(path).relative_to(staging).as_posix() for path in write(staging)]
        manifest = {"written_by": MANIFEST_AUTHOR, "version": __version__, "files": names}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(staging, folder)
    except BaseException:  # Ctrl-C too: the earlier folder stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [folder / name for name in names], replaced


def replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through a hidden sibling of the same suffix, then rename it over ``path``.

    Args:
        path: the file to write.
        write: writes the file at the path it is given.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "note.txt"
        >>> replace_file(target, lambda p: p.write_text("hi"))
        >>> target.read_text()
        'hi'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(path).with_suffix(path.suffix)  # savefig reads the format from the suffix
    try:
        write(staging)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _earlier_bench(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier bench's results; refuse anything else non-empty."""
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise OutputError(f"--out {str(folder)!r} is not a folder")
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if not present:
        return False
    listed = _manifest_files(folder / MANIFEST_NAME)
    foreign = [name for name in present if name != MANIFEST_NAME and name not in (listed or ())]
    if listed is None or foreign:
        shown = ", ".join((foreign or present)[:3]) + (", …" if len(foreign or present) > 3 else "")
        raise OutputError(f"--out {str(folder)!r} holds files optreg bench did not write ({shown}); "
                          "name a new or empty folder, or one an earlier bench wrote")
    return True


def _manifest_files(manifest: Path) -> set[str] | None:
    """The files a bench folder's manifest lists, or None when there is no readable manifest."""
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("written_by") != MANIFEST_AUTHOR:
        return None
    return {str(name) for name in record.get("files", [])}


def _probe_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and write and remove a probe file in it."""
    probe = _sibling(folder / "probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise OutputError(f"cannot write {what}: {error.strerror or error} ({error.filename or folder})") from None


def _sibling(path: Path) -> Path:
    """A hidden, unused name beside ``path`` for writing before the rename into place."""
    return path.with_name(f".{path.name}{STAGING_MARK}{os.getpid()}-{secrets.token_hex(4)}")


def _swap_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an earlier folder is renamed aside first, then removed."""
    if not folder.exists():
        os.replace(staging, folder)
        return
    aside = _sibling(folder)
    os.replace(folder, aside)
    try:
        os.replace(staging, folder)
    except BaseException:
        os.replace(aside, folder)
        raise
    shutil.rmtree(aside, ignore_errors=True)
