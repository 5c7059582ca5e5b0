"""DATA_DIR: one server (or CLI) at a time, and files only this OS user can read."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DataDirInUse(Exception):
    """Another process holds the DATA_DIR lock."""

    def __init__(self, data_dir: Path, pid: int | None, command: str | None) -> None:
        super().__init__(data_dir, pid, command)
        self.data_dir = data_dir
        self.pid = pid
        self.command = command

    def __str__(self) -> str:
        holder = f"process {self.pid}" if self.pid else "another process"
        if self.command:
            holder += f" ({self.command})"
        return (
            f"DATA_DIR {self.data_dir} is in use by {holder}; stop it first, "
            "or set DATA_DIR to another directory"
        )


class DataDirLock:
    """An exclusive lock on DATA_DIR/server.lock, released when this process ends however."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "server.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DataDirInUse; a refused caller writes nothing in DATA_DIR."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirInUse(self.data_dir, pid, _command(pid)) from None
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write a file only this OS user can read, replacing any older one at once."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    temporary.replace(path)


def make_private(path: Path) -> None:
    """Tighten a file written before files were made private."""
    with contextlib.suppress(FileNotFoundError):
        path.chmod(0o600)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _command(pid: int | None) -> str | None:
    if pid is None:
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if not words:
        return None
    words[0] = Path(words[0]).name
    return " ".join(words)[:120]
