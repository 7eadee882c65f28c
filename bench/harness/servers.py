"""The processes a benchmark runs and measures: ``scripts/start.sh`` (``Server``), another
server of a page (``AppServer``: the framework's ceiling, ``bench/ceiling_app.py``) and
``scripts/worker.sh --beat`` (``Worker``); their CPU time and memory from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from harness.common import PYTHON, ROOT, TMP_DIR, BenchError, free_port, http_get
from harness.services import pg_admin_url


class Server:
    """``scripts/start.sh`` as a real process (own session, so the whole tree can be stopped).

    ``command`` replaces start.sh (another server of the same code, or the framework's
    ceiling: ``AppServer``); ``ready_path`` is what must answer 200 before loads start.
    """

    pid_file = "server.pid"
    ready_path = "/health/live"

    def __init__(
        self, env: dict[str, str], log_path: Path, command: list[str] | None = None
    ) -> None:
        self.command = command or [str(ROOT / "scripts" / "start.sh")]
        self.env = env
        self.database = env["DATABASE_URL"].rsplit("/", 1)[1]
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**self.env, "PORT": str(self.port), "HOST": "127.0.0.1", "PMS_SKIP_INSTALL": "1"}
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(  # noqa: S603
            [part.replace("{port}", str(self.port)) for part in self.command],
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (TMP_DIR / self.pid_file).write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if http_get(self.base + self.ready_path, timeout=1)[0] == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"the server did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # Workers left behind by a crashed master are in the same process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()
        with contextlib.suppress(FileNotFoundError):
            (TMP_DIR / self.pid_file).unlink()
        self.process = None

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (its process group)."""
        if self.process is None:
            return 0.0
        total = 0.0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = _proc_stat(stat)
            if fields and int(fields[2]) == self.process.pid:
                total += _cpu(fields)
        return total

    def db_cpu_seconds(self) -> float:
        """CPU time used so far by the PostgreSQL backends serving this server's database."""
        import psycopg

        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]
            ).fetchall()
        total = 0.0
        for (pid,) in pids:
            fields = _proc_stat(Path(f"/proc/{pid}/stat"))
            if fields:
                total += _cpu(fields)
        return total

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


class AppServer(Server):
    """A server of something other than the project's database-backed tier: the framework's
    ceiling page (``bench/ceiling_app.py``) on one server or another. No database."""

    ready_path = "/api/v1/products/"

    def __init__(self, name: str, command: list[str], log_path: Path) -> None:
        super().__init__({**os.environ, "DATABASE_URL": "none/none"}, log_path, command)
        self.pid_file = f"server-{name}.pid"

    def db_cpu_seconds(self) -> float:
        return 0.0


def ceiling_command(server: str, workers: int) -> list[str]:
    """The command serving the ceiling page with ``server`` on ``{port}``."""
    bench_dir = str(ROOT / "bench")
    venv = ROOT / ".venv" / "bin"
    if server == "gunicorn":
        return [
            str(venv / "gunicorn"), "--workers", str(workers), "--bind", "127.0.0.1:{port}",
            "--chdir", bench_dir, "--log-level", "warning", "ceiling_app:application",
        ]  # fmt: skip
    if server == "uvicorn":
        return [
            PYTHON, "-m", "uvicorn", "--app-dir", bench_dir, "--workers", str(workers),
            "--host", "127.0.0.1", "--port", "{port}", "--log-level", "warning",
            "--no-access-log", "ceiling_app:asgi_application",
        ]  # fmt: skip
    if server == "granian":
        return [
            str(venv / "granian"), "--interface", "wsgi", "--workers", str(workers),
            "--host", "127.0.0.1", "--port", "{port}", "--working-dir", bench_dir,
            "--log-level", "warning", "--no-ws", "ceiling_app:application",
        ]  # fmt: skip
    raise BenchError(f"no ceiling command for {server!r}")


def _proc_stat(path: Path) -> list[str] | None:
    """The fields of /proc/<pid>/stat after "pid (comm)": state ppid pgrp ... (or None)."""
    try:
        return path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu(fields: list[str]) -> float:
    # utime and stime are fields 14 and 15 of stat, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Worker(Server):
    """``scripts/worker.sh --beat`` as a real process group."""

    def start(self, timeout: float = 60) -> None:
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(  # noqa: S603
            [str(ROOT / "scripts" / "worker.sh"), "--beat"],
            cwd=ROOT,
            env={**self.env, "PMS_SKIP_INSTALL": "1"},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (TMP_DIR / "worker.pid").write_text(str(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"the worker exited at start:\n{self.log_tail()}")
            # The banner prints at any log level; the caller then checks end to end.
            if b"[queues]" in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise BenchError(f"the worker was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> None:
        super().stop(timeout)
        with contextlib.suppress(FileNotFoundError):
            (TMP_DIR / "worker.pid").unlink()

    def rss_mb(self) -> float:
        """Resident memory of every process of the worker (main, pool, beat), in MB."""
        if self.process is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            fields = _proc_stat(stat)
            if fields and int(fields[2]) == self.process.pid:
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return total / 2**20
