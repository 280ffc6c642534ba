"""The real console script as a subprocess: with pipes (as in CI or a script), or inside a pseudo-terminal
of a chosen width (as a person at a terminal sees it, answering questions on the keyboard)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

from helpers_core import CLI


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any MIGRATION_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_") and k != "COLUMNS"}
    env.update(extra)
    return env


def project_env(project, models: str, **extra: str) -> dict[str, str]:
    """The environment that points the CLI at a test project (projects.py) and a models spec, with its own data folder."""
    return clean_env(MIGRATION_DATABASE_URL=project.url, MIGRATION_MODELS=models, MIGRATION_BACKUP_DIR=str(project.backups),
                     MIGRATION_DATA_DIR=str(project.tmp / "data"), **extra)


def run_cli(*args: str, env: dict[str, str], timeout: float = 120, cwd: Path | str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def run_many(runs: list[tuple[list[str], dict[str, str]]], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    """Several read-only CLI runs at once (each `(args, env)`); their results in the same order."""
    procs = [(args, subprocess.Popen([CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)) for args, env in runs]
    results = []
    for args, proc in procs:
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([CLI, *args], proc.returncode, out, err))
    return results


@dataclass
class TerminalRun:
    code: int
    screen: str  # everything written to the terminal (stderr, and stdout unless piped), \r\n made \n
    stdout: str | None  # stdout when it was piped instead


def run_in_terminal(*args: str, env: dict[str, str], answer: str | None = None, prompt: str = "[y/N]",
                    columns: int = 80, stdout_to_pipe: bool = False, timeout: float = 120) -> TerminalRun:
    """Run the CLI with stdin and stderr (and stdout unless `stdout_to_pipe`) on a new pseudo-terminal
    `columns` wide; type `answer` and Enter once `prompt` appears."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    out_target = subprocess.PIPE if stdout_to_pipe else slave
    proc = subprocess.Popen([CLI, *args], stdin=slave, stdout=out_target, stderr=slave, env=env, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    screen = b""
    answered = answer is None
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} did not finish within {timeout} s; screen so far:\n{screen.decode(errors='replace')}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last writer has gone
                    chunk = b""
                if not chunk:
                    break
                screen += chunk
                if not answered and prompt.encode() in screen:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None and not ready:
                # The child has exited; read what is left without waiting.
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    break
        stdout = proc.stdout.read().decode() if stdout_to_pipe else None
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return TerminalRun(proc.returncode, screen.decode(errors="replace").replace("\r\n", "\n"), stdout)
