"""The production web tier: one public address, three kinds of process behind it.

``python -m pms_backend.server`` (what ``scripts/start.sh`` runs) starts

- **nginx** on ``$HOST:$PORT``: HTTPS/WSS with TLS 1.3 as the minimum when
  ``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` are set; it routes ``/ws/`` to the websocket
  processes and everything else to the HTTP processes, over unix sockets in a folder only
  this user can open;
- **gunicorn** (sync WSGI, ``pms_backend.wsgi``) with ``$WEB_CONCURRENCY`` processes for
  HTTP: Django's sync stack without the ASGI thread hand-off every request paid before;
- **uvicorn** (ASGI, Channels, ``pms_backend.asgi``) with ``$WS_CONCURRENCY`` processes
  for websockets (``python -m pms_backend.server ws``).

It stays in the foreground as their supervisor: SIGTERM or SIGINT stops the tier
gracefully (nginx stops accepting and finishes what it holds, then the HTTP processes
finish their requests), and if any of the three dies the others are stopped and it exits
non-zero, so that systemd (or whatever runs it) restarts the whole tier. None of it is a
proxy of ours: nginx routes, gunicorn and uvicorn serve.

Forwarded headers are trusted only from the proxies listed in ``FORWARDED_ALLOW_IPS``
(nginx's realip module); nginx then tells the processes behind it the client's address
and scheme, and only nginx can reach them.

Every process writes its Prometheus samples to one folder (``PROMETHEUS_MULTIPROC_DIR``):
``$PMS_METRICS_DIR/web-$PORT`` (default ``var/metrics``), emptied when the tier starts and
removed when it stops, so ``/metrics`` sums exactly this tier's processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import grp
import ipaddress
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pms_backend.plurals import counted

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
GRACEFUL_SECONDS = 20


class ConfigError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


def _whole(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {raw!r})") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be {low}-{high} (got {value})")
    return value


def options_from_env(env: dict[str, str]) -> dict:
    """The tier's settings from the environment; exit with one clear line on bad values."""
    options = {
        "host": env.get("HOST", "0.0.0.0"),  # noqa: S104 -- a server listens on all interfaces
        "port": _whole(env, "PORT", 8000, 1, 65535),
        "http_workers": _whole(env, "WEB_CONCURRENCY", 2, 1, 64),
        "ws_workers": _whole(env, "WS_CONCURRENCY", 1, 1, 64),
        "nginx_workers": _whole(env, "NGINX_WORKERS", 1, 1, 64),
        "http_server": env.get("PMS_HTTP_SERVER") or "gunicorn",
        "access_log": env.get("ACCESS_LOG", "0") == "1",
        "log_level": env.get("UVICORN_LOG_LEVEL", "warning"),
        "trusted_proxies": _networks(env.get("FORWARDED_ALLOW_IPS", "")),
        "max_body_bytes": _whole(env, "PMS_MAX_BODY_BYTES", 1024 * 1024, 1024, 2**40),
        "import_max_bytes": _whole(
            env, "PMS_ADMIN_IMPORT_MAX_BYTES", 20 * 1024 * 1024, 1024, 2**40
        ),
        "cert": "",
        "key": "",
    }
    if options["http_server"] not in ("gunicorn", "granian"):
        raise ConfigError(
            f"PMS_HTTP_SERVER must be gunicorn or granian (got {options['http_server']!r})"
        )
    if not os.access(VENV_BIN / options["http_server"], os.X_OK):
        # granian is not a production dependency: say so rather than a dead HTTP process.
        raise ConfigError(
            f"PMS_HTTP_SERVER={options['http_server']}: {VENV_BIN / options['http_server']} "
            f"is not installed (.venv/bin/pip install {options['http_server']})"
        )
    cert, key = env.get("TLS_CERT_FILE", ""), env.get("TLS_KEY_FILE", "")
    if cert or key:
        for name, path in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
            if not path or not os.access(path, os.R_OK):
                raise ConfigError(f"{name} must name a readable file (got {path!r})")
        options.update(cert=str(Path(cert).resolve()), key=str(Path(key).resolve()))
    return options


def _networks(raw: str) -> list[str]:
    """``FORWARDED_ALLOW_IPS`` as networks nginx understands (``*`` trusts everyone)."""
    result = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        if item == "*":
            print(
                "warning: FORWARDED_ALLOW_IPS=* lets any client name its own address (and "
                "so pass for a trusted network): list your proxies instead",
                file=sys.stderr,
            )
            result += ["0.0.0.0/0", "::/0"]
            continue
        try:
            result.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"FORWARDED_ALLOW_IPS: {item!r} is not an address") from None
    return result


# --- nginx --------------------------------------------------------------------------------

NGINX_CONF = """\
# Written by pms_backend/server.py at each start; edits are lost.
daemon off;
master_process on;
worker_processes {nginx_workers};
pid {run}/nginx.pid;
error_log stderr warn;
worker_shutdown_timeout {graceful}s;
worker_rlimit_nofile {nofile};
{user}
events {{
    worker_connections 4096;
}}

http {{
    {access_log}
    client_body_temp_path {run}/tmp/body;
    proxy_temp_path {run}/tmp/proxy;
    fastcgi_temp_path {run}/tmp/fastcgi;
    uwsgi_temp_path {run}/tmp/uwsgi;
    scgi_temp_path {run}/tmp/scgi;

    server_tokens off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    # Bodies are read whole before a request reaches an HTTP process, so a slow client
    # never holds one. The API takes at most PMS_MAX_BODY_BYTES; only the admin's CSV
    # import (below) takes more. Slow clients get 20 s per header and per body read.
    client_max_body_size {max_body_bytes};
    client_body_buffer_size 64k;
    client_header_timeout 20s;
    client_body_timeout 20s;
    send_timeout 60s;
    proxy_buffers 16 64k;

    # Only proxies in FORWARDED_ALLOW_IPS may say who the client is, and how it came.
{realip}
    geo $realip_remote_addr $pms_trusted_peer {{
        default 0;
{trusted_map}
    }}
    map "$pms_trusted_peer:$http_x_forwarded_proto" $pms_proto {{
        default $scheme;
        "1:https" https;
        "1:http" http;
    }}
    map $http_upgrade $pms_connection_upgrade {{
        default upgrade;
        "" close;
    }}

    upstream pms_http {{
        server unix:{run}/http.sock;
        keepalive 64;
    }}
    upstream pms_ws {{
        server unix:{run}/ws.sock;
    }}

    server {{
        listen {listen}{ssl} backlog=4096;
{tls}
        proxy_redirect off;

        # (A location's proxy_set_header replaces every inherited one: each says them all.)
        location /ws/ {{
            proxy_pass http://pms_ws;
            proxy_http_version 1.1;
{proxy_headers}
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $pms_connection_upgrade;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }}

        # nginx refuses TRACE itself, with a bare HTML 405 and no Allow header: the app
        # answers it instead (problem+json, the route's Allow), told the method by
        # X-Pms-Method on an OPTIONS request (pms_backend/wsgi.py restores it).
        error_page 405 = @refused_method;
        location @refused_method {{
            proxy_pass http://pms_http;
            proxy_method OPTIONS;
            proxy_http_version 1.1;
{proxy_headers}
            proxy_set_header X-Pms-Method $request_method;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}

        # The admin's CSV import (signed-in staff only; the app checks): larger bodies.
        location ~ ^/admin/catalog/product/(process_)?import/$ {{
            client_max_body_size {import_max_bytes};
            proxy_pass http://pms_http;
            proxy_http_version 1.1;
{proxy_headers}
            proxy_set_header Connection "";
            proxy_read_timeout 300s;
        }}

        location / {{
            proxy_pass http://pms_http;
            proxy_http_version 1.1;
{proxy_headers}
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
    }}
}}
"""

TLS_BLOCK = """\
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.3;
        ssl_session_cache shared:pms_tls:10m;
        ssl_session_timeout 1h;
"""


PROXY_HEADERS = """\
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $pms_proto;
            proxy_set_header Forwarded "";
            proxy_set_header X-Real-IP "";
            proxy_set_header X-Forwarded-Host "";
            proxy_set_header X-Forwarded-Port "";
            proxy_set_header X-Forwarded-Ssl "";
            proxy_set_header X-Forwarded-Protocol "";
            proxy_set_header X-Pms-Method "";"""


def open_files_limit(wanted: int = 65536) -> int:
    """The open-files limit for nginx's workers: ``wanted``, or the hard limit if lower (a
    container without CAP_SYS_RESOURCE refuses to raise it, even for root, and nginx says so
    on every start)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def nginx_conf(options: dict, run: Path) -> str:
    host = options["host"]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    tls = bool(options["cert"])
    trusted = options["trusted_proxies"]
    return NGINX_CONF.format(
        run=run,
        proxy_headers=PROXY_HEADERS,
        nginx_workers=options["nginx_workers"],
        # As root, nginx's workers (which parse what clients send) drop to an unprivileged
        # user given group access to the sockets (prepare_run_dir, Tier.start); run
        # unprivileged (the production units), the line is not written.
        user=f"user {options['nginx_user']} {options['nginx_group']};"
        if options.get("nginx_user")
        else "",
        access_log=(
            'log_format pms \'$remote_addr "$request" $status $body_bytes_sent '
            '$request_time "$http_x_request_id"\';\n    access_log /dev/stdout pms;'
            if options["access_log"]
            else "access_log off;"
        ),
        max_body_bytes=options["max_body_bytes"],
        import_max_bytes=options["import_max_bytes"],
        graceful=GRACEFUL_SECONDS,
        nofile=open_files_limit(),
        realip=(
            "".join(f"    set_real_ip_from {net};\n" for net in trusted)
            + "    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;"
            if trusted
            else ""
        ),
        trusted_map="".join(f"        {net} 1;\n" for net in trusted).rstrip("\n")
        if trusted
        else "",
        listen=f"{host}:{options['port']}",
        ssl=" ssl" if tls else "",
        tls=TLS_BLOCK.format(cert=options["cert"], key=options["key"]) if tls else "",
    )


def http_command(options: dict, run: Path) -> list[str]:
    """The HTTP processes: gunicorn (sync workers) or granian (WSGI), by ``PMS_HTTP_SERVER``."""
    if options["http_server"] == "granian":
        return [
            str(VENV_BIN / "granian"),
            "--interface", "wsgi",
            "--uds", str(run / "http.sock"),
            "--workers", str(options["http_workers"]),
            # Django's sync stack, one request at a time per process (one DB connection).
            "--blocking-threads", "1",
            "--http", "1",
            "--no-ws",
            "--respawn-failed-workers",
            "--workers-kill-timeout", str(GRACEFUL_SECONDS),
            "--log-level", "warning",
            "pms_backend.wsgi:application",
        ]  # fmt: skip
    return [
        str(VENV_BIN / "gunicorn"),
        "--config",
        "python:pms_backend.gunicorn_config",
        "pms_backend.wsgi:application",
    ]


def nginx_binary(env: dict[str, str]) -> str:
    found = env.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        raise ConfigError(
            "nginx is not installed (scripts/build.sh installs it as root: apt-get install "
            "nginx-light; or set NGINX_BIN)"
        )
    return found


# --- The processes ------------------------------------------------------------------------


def prepare_metrics_dir(env: dict[str, str], port: int) -> Path:
    """Return an empty folder for this tier's metric files (one per port).

    Folders that tiers killed without a clean exit left behind are removed too.
    """
    root = Path(env.get("PMS_METRICS_DIR") or BASE_DIR / "var" / "metrics")
    for other in root.glob("web-*/server.pid"):
        try:
            pid = int(other.read_text().strip())
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to judge
        if not _running(pid):
            shutil.rmtree(other.parent, ignore_errors=True)
    path = root / f"web-{port}"
    # Samples left by a previous run (its pids are gone) would be summed into ours.
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    # Written whole or not at all: a tier starting beside this one reads the file, and an
    # empty one read mid-write once made it remove this live tier's folder.
    partial = path / f".server.pid.{os.getpid()}"
    partial.write_text(str(os.getpid()))
    os.replace(partial, path / "server.pid")
    return path


def run_dir_path(env: dict[str, str], port: int) -> Path:
    """``PMS_RUN_DIR``, else ``var/run/web-$PORT``; as root ``/run/pms/web-$PORT``: nginx's
    unprivileged workers must traverse every folder above the sockets, and a checkout may
    sit below a private one (a CI clone in a 0700 temporary folder)."""
    if env.get("PMS_RUN_DIR"):
        return Path(env["PMS_RUN_DIR"]).resolve()
    if os.geteuid() == 0:
        return Path("/run/pms") / f"web-{port}"
    return (BASE_DIR / "var" / "run" / f"web-{port}").resolve()


def claim_port(env: dict[str, str], port: int) -> int:
    """Hold a lock for this port's tier as long as this process lives; exit if another
    tier holds it (a second start must not clear the folders of a running one)."""
    lock = run_dir_path(env, port).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and lock.parent == Path("/run/pms"):
        lock.parent.chmod(0o755)  # traversable by nginx's workers, writable by root only
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(
            f"a web tier for port {port} is already running here ({lock} is held)"
        ) from None
    return fd


def prepare_run_dir(env: dict[str, str], port: int, group: int | None = None) -> Path:
    """A private folder for the sockets, nginx's config and its buffers: mode 0700, or
    0750 with ``group`` (nginx's workers' group, when the tier runs as root)."""
    path = run_dir_path(env, port)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    path.chmod(0o700)
    (path / "tmp").mkdir(mode=0o700)
    if group is not None:
        os.chown(path, 0, group)
        path.chmod(0o750)
        (path / "tmp").chmod(0o770)
        os.chown(path / "tmp", 0, group)
    return path


def nginx_identity() -> tuple[str, str, int] | None:
    """As root: the unprivileged user and group nginx's workers run as (Debian's
    ``www-data``, else ``nobody``/``nogroup``)."""
    if os.geteuid() != 0:
        return None
    for user, group in (("www-data", "www-data"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(user)
            return user, group, grp.getgrnam(group).gr_gid
        except KeyError:
            continue
    raise ConfigError("running as root, found no unprivileged user for nginx's workers")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(path: Path) -> bool:
    """Whether a process accepts connections on the unix socket ``path`` (uvicorn binds it
    before its workers listen: the file alone is not enough)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _become_subreaper() -> None:
    """Processes orphaned below us (a gunicorn worker whose master was killed) become our
    children rather than init's, so that stopping the tier can find and end them (Linux)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans(known: set[int]) -> None:
    """Collect the exit status of orphans that ended below us (never one of ours)."""
    for pid in _orphans(known):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _orphans(known: set[int]) -> list[int]:
    me = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(stat.parent.name)
        if fields[1] == me and pid not in known:
            found.append(pid)
    return found


def _kill_orphans(known: set[int]) -> None:
    """Kill and reap every child of ours that is not one of the three we started."""
    for pid in _orphans(known):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the supervisor dies (Linux), so no half tier lingers."""
    libc = _libc()
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Tier:
    def __init__(self, options: dict, env: dict[str, str]) -> None:
        self.options = options
        self.env = env
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self, run: Path) -> None:
        child_env = {**self.env, "PMS_RUN_DIR": str(run), "PMS_BEHIND_FRONT": "1"}
        http_env = {
            **child_env,
            # One sync request at a time per process: one persistent connection each.
            "DATABASE_POOL": self.env.get("DATABASE_POOL", "false"),
        }
        self._spawn("http", http_command(self.options, run), http_env)
        self._spawn("ws", [sys.executable, "-m", "pms_backend.server", "ws"], child_env)
        self._wait_for_sockets(run, ("http.sock", "ws.sock"))
        if self.options.get("nginx_gid") is not None:
            # nginx's unprivileged workers connect through the group; nobody else can.
            for name in ("http.sock", "ws.sock"):
                os.chown(run / name, 0, self.options["nginx_gid"])
                (run / name).chmod(0o660)
        conf = run / "nginx.conf"
        conf.write_text(nginx_conf(self.options, run))
        self._spawn(
            "nginx",
            [nginx_binary(self.env), "-e", "stderr", "-p", str(run), "-c", str(conf)],
            child_env,
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(  # noqa: S603 -- our own programs
            argv, env=env, cwd=BASE_DIR, preexec_fn=_die_with_parent
        )

    def _wait_for_sockets(self, run: Path, names: tuple[str, ...], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not all(_listening(run / name) for name in names):
            self._check_children()
            if self.stopping or time.monotonic() > deadline:
                if not self.stopping:
                    print("error: the HTTP and websocket processes did not start", file=sys.stderr)
                self.stop()
                sys.exit(1)
            time.sleep(0.05)

    def _check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None and not self.stopping:
                print(
                    f"error: the {name} process exited ({child.returncode}); stopping the tier",
                    file=sys.stderr,
                )
                self.stop()
                sys.exit(1)

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def supervise(self) -> None:
        known = {child.pid for child in self.children.values()}
        while not self.stopping:
            self._check_children()
            _reap_orphans(known)
            time.sleep(0.2)
        self.stop()

    def stop(self) -> None:
        """Graceful: nginx closes its listener and finishes the requests it holds (the HTTP
        processes still serve them) while the websocket processes close their sockets;
        then the HTTP processes finish and exit. Whatever is left after the grace period
        is killed."""
        self.stopping = True
        self._signal("nginx", signal.SIGQUIT)
        self._signal("ws", signal.SIGTERM)
        self._wait(["nginx"], GRACEFUL_SECONDS)
        self._signal("http", signal.SIGTERM)
        self._wait(list(self.children), GRACEFUL_SECONDS + 5)
        for child in self.children.values():
            if child.poll() is None:
                child.kill()
                child.wait(5)
        _kill_orphans({child.pid for child in self.children.values()})

    def _signal(self, name: str, signum: int) -> None:
        child = self.children.get(name)
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    def _wait(self, names: list[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for name in names:
            child = self.children.get(name)
            if child is None:
                continue
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(0.0, deadline - time.monotonic()))


def main() -> None:
    env = dict(os.environ)
    options = options_from_env(env)
    nginx_binary(env)  # fail before starting anything
    identity = nginx_identity()
    if identity is not None:
        options["nginx_user"], options["nginx_group"], options["nginx_gid"] = identity
    lock = claim_port(env, options["port"])  # noqa: F841 -- held until this process exits
    metrics_dir = prepare_metrics_dir(env, options["port"])
    run = prepare_run_dir(env, options["port"], identity[2] if identity else None)
    # Every process of the tier inherits it, before anything imports prometheus_client.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env["WEB_CONCURRENCY"] = str(options["http_workers"])
    scheme = "https" if options["cert"] else "http"
    print(
        f"==> serving {scheme}://{options['host']}:{options['port']}: nginx, "
        f"{counted(options['http_workers'], 'HTTP process', 'HTTP processes')} "
        f"({options['http_server']}), "
        f"{counted(options['ws_workers'], 'websocket process', 'websocket processes')} (uvicorn)",
        file=sys.stderr,
    )
    _become_subreaper()
    tier = Tier(options, env)
    signal.signal(signal.SIGTERM, tier.on_signal)
    signal.signal(signal.SIGINT, tier.on_signal)
    try:
        tier.start(run)
        tier.supervise()
    finally:
        tier.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
    print("==> stopped", file=sys.stderr)


# --- The websocket processes (uvicorn) ----------------------------------------------------


def ws_main() -> None:
    """uvicorn on the tier's private socket; only nginx reaches it, so the client address
    and scheme nginx forwards are taken as they come."""
    import uvicorn

    env = os.environ
    run = Path(env["PMS_RUN_DIR"])
    uvicorn.run(
        "pms_backend.asgi:application",
        uds=str(run / "ws.sock"),
        workers=_whole(dict(env), "WS_CONCURRENCY", 1, 1, 64),
        log_level=env.get("UVICORN_LOG_LEVEL", "warning"),
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        proxy_headers=True,
        forwarded_allow_ips="*",
        # Events are small JSON frames sent to every subscriber: compressing each copy
        # cost more server CPU (5% of the websocket fan-out) than the bytes were worth.
        ws_per_message_deflate=False,
        # Refuse an oversized message from its frame header, before reading it.
        ws_max_size=_django_setting("WEBSOCKET_MAX_MESSAGE_BYTES"),
    )


def _django_setting(name: str):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms_backend.settings")
    from django.conf import settings

    return getattr(settings, name)


if __name__ == "__main__":
    if sys.argv[1:] == ["ws"]:
        ws_main()
    else:
        main()
