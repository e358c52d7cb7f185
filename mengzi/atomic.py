"""Atomic writes: a file or folder appears complete or not at all (temp + rename), so a killed run loses nothing.

`tempfile` creates its files 0600 and folders 0700 whatever the umask; what is renamed into place here gets the
permissions a plain `open`/`mkdir` would have given it (0666/0777 less the user's umask), so a colleague or a
server running as another user can read a run folder or an export when the umask allows it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class DiskFullError(OSError):
    """No space left on the device while writing an output; the partial file or folder was removed."""


def disk_full(e: BaseException) -> bool:
    """Is `e` a full disk (or quota)? torch.save reports it as a RuntimeError: 'unexpected pos ...'."""
    text = str(e)
    return (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "unexpected pos" in text or (
        "No space left" in text)


def full(path: Path, e: BaseException, kept: str = "") -> DiskFullError:
    """The error to raise for a full disk while writing `path` (`kept`: what still holds the last good state)."""
    return DiskFullError(errno.ENOSPC, f"no space left on device writing {path}; the partial output was removed"
                         + (f"; {kept}" if kept else "") + "; free some space and run again", str(path))


def umask() -> int:
    """The process umask, read without changing it where /proc says it (os.umask can only set and return)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def share(path: str | os.PathLike) -> Path:
    """Give `path`, and everything under it if a folder, the permissions a plain `open`/`mkdir` would have given under
    the user's umask (execute bits kept). Some writers create files 0600 whatever the umask: `tempfile`, and the
    safetensors library for every weights file."""
    path, mask = Path(path), umask()
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        if p.is_symlink():
            continue
        mode = os.stat(p).st_mode
        os.chmod(p, (0o777 if p.is_dir() else 0o666 | (mode & 0o111)) & ~mask)
    return path


def temp_file(path: Path) -> tuple[int, str]:
    """(fd, name) of a new temporary file beside `path`, with the permissions `open(path, "w")` would give."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~umask())
    return fd, tmp


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if disk_full(e):
            raise full(path, e) from None
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces `path` in one rename.

    An existing `path` is refused unless `overwrite`; then the old folder is moved aside first and deleted only
    after the new one is in place, so at every instant one complete folder exists under `path` or beside it.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another output folder or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        share(tmp)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if disk_full(e):
            raise full(path, e, f"{path} is unchanged" if path.exists() else "") from None
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
