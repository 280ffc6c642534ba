"""What the CLI does only when a person is at a terminal: progress bars (rich, on stderr) and
yes/no questions. Without a terminal both stay silent, so logs and pipes get no escape codes."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Progress = Callable[[float, "float | None", str], None]


def can_ask() -> bool:
    """A person can see a question on stderr and answer it on stdin."""
    return _isatty(sys.stdin) and _isatty(sys.stderr)


def _isatty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def confirm(question: str) -> bool:
    """Ask on stderr, read one line from stdin; only y or yes (any case) is a yes, end of input a no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:
        sys.stderr.write("\n")
    return answer.strip().lower() in ("y", "yes")


class _Bars:
    """The core's `(done, total, message)` callbacks as rich progress bars: one bar per phase (a new
    bar when the total changes, e.g. from copying the backup to executing the statements), a
    pulsing bar while the total is unknown."""

    def __init__(self, progress):
        self._progress = progress
        self._task = None
        self._total: object = object()

    def __call__(self, done: float, total: float | None, message: str) -> None:
        if self._task is None or total != self._total:
            if self._task is not None:
                self._progress.update(self._task, visible=False)
            self._task = self._progress.add_task(message, total=total)
            self._total = total
        self._progress.update(self._task, completed=done, description=message)


@contextmanager
def progress_bars() -> Iterator[Progress | None]:
    """A progress callback drawing on stderr when stderr is a terminal; None otherwise."""
    if not _isatty(sys.stderr):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    stderr = sys.stderr
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler) and h.stream is stderr]
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=stderr), transient=True) as progress:
        # Log records go through rich's stand-in for sys.stderr, above the bar, or they would tear it apart.
        previous = [h.setStream(sys.stderr) for h in handlers]
        try:
            yield _Bars(progress)
        finally:
            for handler, stream in zip(handlers, previous):
                handler.setStream(stream)
