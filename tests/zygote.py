"""A warm fork server for the kill tests (``reliability/faultrun.py``, ``fit/killfit.py``).

The server (:func:`serve`) imports the heavy modules once, then forks one child per JSON request line
on stdin, runs ``child(request)`` there and answers ``{"exitcode": int, "timed_out": bool}`` (a child
still running after ``request["timeout"]`` seconds, default 600, is SIGKILLed). :class:`Zygote` is
the test side: it starts a helper script's ``serve`` in a subprocess, sends requests and stops it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def serve(child: Callable[[dict], int | None], ready: dict | None = None) -> None:
    """Answer ``{"ready": True, **ready}``, then fork ``child`` per request line (the caller has
    imported what the children share)."""
    answer = sys.stdout
    answer.write(json.dumps({"ready": True, **(ready or {})}) + "\n")
    answer.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 99
            try:
                code = int(child(req) or 0)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 98
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + float(req.get("timeout", 600))
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
            time.sleep(0.05)
        answer.write(json.dumps({"exitcode": os.waitstatus_to_exitcode(status), "timed_out": timed_out}) + "\n")
        answer.flush()


class Zygote:
    """Start ``python SCRIPT serve`` (a script that calls :func:`serve`), send requests, stop it.

    ``paths``: folders the server imports its helpers from (``src/`` and this folder come first).
    """

    def __init__(self, script: Path, log: Path, *, paths: Iterable[Path] = (), env: dict | None = None,
                 start_timeout: float = 600):
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(TESTS), *map(str, paths), env.get("PYTHONPATH", "")])
        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, str(script), "serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env, text=True, bufsize=1)
        self.info = self._read(start_timeout)

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"zygote gave no answer within {timeout:.0f} s (log: {self._log.name})")
        return json.loads(line)

    def run(self, req: dict) -> dict:
        """Send one request; ``{"exitcode": ..., "timed_out": ...}``."""
        timeout = float(req.setdefault("timeout", 600))
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout + 30)

    def close(self) -> None:
        """Stop the server (it holds no state worth an orderly interpreter shutdown)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.terminate()
            self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
