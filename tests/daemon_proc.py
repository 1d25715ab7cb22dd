"""Run the real daemon (`python -m adw_patternd run`) as a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class DaemonProcess:
    def __init__(self, config: Path, env: dict | None = None, prefix: tuple[str, ...] = ()):
        """``prefix``: a command to run it under (setpriv, to run as another user)."""
        self.config = config
        self.out_path = config.parent / f"daemon-{time.monotonic_ns()}.out"
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "adw_patternd", "run", "--config", str(config)],
                                     stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})

    def log(self) -> str:
        path = self.config.parent / "daemon.log"
        return path.read_text() if path.exists() else ""

    def output(self) -> str:
        """What the daemon printed on stdout and stderr."""
        return self.out_path.read_text()

    def send(self, sig) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout: float = 5.0) -> int:
        """Send ``sig`` and wait; returns the exit code. Fails if it takes longer than ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not exit within {timeout} s of {sig!r}\n{self.output()[-2000:]}")
        finally:
            self.out.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.out.close()

    def alive(self) -> bool:
        return self.proc.poll() is None
