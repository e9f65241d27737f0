"""An extxyz file that labelled frames are appended to one at a time, as they come.

Each frame goes in with one ``write`` to a file opened for appending, then ``fsync``:
a killed run loses at most the frames in flight. Each frame carries a key
(``info['evopot_key']``); a rerun reads the keys already there and labels only the
rest. A frame cut short by a crash mid-write (the file's last lines) is left out by
every reader; the writer (``FrameStore(path, writer=True)``: the one process that
appends, holding an exclusive lock on the file) cuts it off, with a warning, and labels
it again. A reader never changes the file, so watching a run's output while it is
written is safe, and a second writer is refused with one line instead of interleaving
its frames with the first's.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import ase.io
from ase import Atoms

from evopot.errors import EvopotError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock
    fcntl = None

KEY = "evopot_key"


def _complete_length(data: bytes, path: Path) -> int:
    """Bytes at the start of ``data`` (the contents of ``path``) that hold whole extxyz
    frames (a count line, a comment line and that many atom lines, each ending in a
    newline)."""
    lines = data.splitlines(keepends=True)
    complete = offset = k = 0
    while k < len(lines):
        line = lines[k]
        if not line.strip():  # blank lines between frames
            offset += len(line)
            complete, k = (offset, k + 1) if line.endswith(b"\n") else (complete, len(lines))
            continue
        try:
            count = int(line)
        except ValueError:
            raise EvopotError(
                f"{path}: expected an atom count at byte {offset}, found {line[:40]!r}; is this an extxyz file "
                f"written by evopot data?"
            ) from None
        frame = lines[k : k + count + 2]
        if len(frame) < count + 2 or not frame[-1].endswith(b"\n"):
            break
        offset += sum(len(x) for x in frame)
        complete, k = offset, k + count + 2
    return complete


class FrameStore:
    """The frames in ``path`` by key; with ``writer``, appending new ones (this process
    then holds the file's lock until it ends or :meth:`close` is called)."""

    def __init__(self, path: str | Path, writer: bool = False):
        self.path = Path(path)
        self.frames: dict[str, Atoms] = {}
        self.writer = writer
        self._lock: int | None = None
        if self.path.exists():
            if writer:
                self._take_lock()
            self._read()

    def _take_lock(self) -> None:
        """The exclusive lock on the file, or one line naming it when another process holds it."""
        if self._lock is not None or fcntl is None:
            return
        handle = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            raise EvopotError(
                f"{self.path}: another evopot process is writing this file; wait for it to finish, or stop it, "
                f"or give another output"
            ) from None
        self._lock = handle

    def close(self) -> None:
        """Let go of the file's lock (a writer's; the process's end does it too, and so
        does the store's own end)."""
        if getattr(self, "_lock", None) is not None:
            os.close(self._lock)
            self._lock = None

    def __del__(self):
        self.close()

    def _read(self) -> None:
        data = self.path.read_bytes()  # once: a writer may be adding a frame meanwhile
        complete = _complete_length(data, self.path)
        if complete < len(data) and self.writer:
            warnings.warn(
                f"{self.path}: the last frame was cut short (a run killed while writing it); dropped it, "
                f"it will be labelled again",
                stacklevel=3,
            )
            with self.path.open("r+b") as handle:
                handle.truncate(complete)
        if complete == 0:
            return
        try:
            images = ase.io.read(io.StringIO(data[:complete].decode()), index=":", format="extxyz")
        except Exception as exc:  # ase.io raises many kinds
            raise EvopotError(f"{self.path}: cannot read it as extxyz ({exc}); move it away to start afresh") from None
        for k, atoms in enumerate(images):
            key = atoms.info.get(KEY)
            if key is None:
                raise EvopotError(
                    f"{self.path}: frame {k} has no {KEY}; the file was not written by evopot data: give another output"
                )
            self.frames[str(key)] = atoms

    def __contains__(self, key: str) -> bool:
        return key in self.frames

    def __len__(self) -> int:
        return len(self.frames)

    def append(self, key: str, atoms: Atoms) -> None:
        """Write ``atoms`` (with its calculator's results) as the file's next frame."""
        if not self.writer:
            raise EvopotError(f"{self.path}: opened for reading only; FrameStore(path, writer=True) appends")
        atoms.info[KEY] = key
        text = io.StringIO()
        ase.io.write(text, atoms, format="extxyz")
        data = text.getvalue().encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._take_lock()  # the first frame of a new file
            written = os.write(handle, data)
            if written != len(data):  # pragma: no cover - a full disk
                raise EvopotError(f"{self.path}: wrote {written} of {len(data)} bytes (disk full?)")
            os.fsync(handle)
        finally:
            os.close(handle)
        self.frames[key] = atoms
