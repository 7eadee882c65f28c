"""Settings come from the environment; production refuses to start on insecure defaults.

Each case starts a fresh interpreter: settings are read once per process.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
STRONG_KEY = secrets.token_urlsafe(50)
ENCRYPTION_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
AUDIT_CHAIN_KEY = secrets.token_urlsafe(32)

# Import the settings the way a web process does and print what a reader needs to see.
SHOW = """
import json
import pms_backend.wsgi  # sets Django up and logs the backends, as gunicorn's import does
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "ENGINE": s.DATABASES["default"]["ENGINE"],
    "CACHE": s.CACHES["default"]["BACKEND"],
    "BROKER": s.CELERY_BROKER_URL,
    "BROKER_TRANSPORT": getattr(s, "CELERY_BROKER_TRANSPORT", None),
    "SSL_REDIRECT": getattr(s, "SECURE_SSL_REDIRECT", False),
    "HSTS": getattr(s, "SECURE_HSTS_SECONDS", 0),
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "CORS": s.CORS_ALLOWED_ORIGINS,
    "CURRENCY": s.PMS_DEFAULT_CURRENCY,
    "BASE_DIR": str(s.BASE_DIR),
}))
"""


IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    ".env",
    "db.sqlite3*",
    "var",
    "staticfiles",
    "bench",
    "tests",
    "__pycache__",
    "*.egg-info",
    ".*_cache",
)


def copy_project(target: Path) -> Path:
    """Copy the project's code and scripts to ``target``, sharing the checkout's .venv.

    Settings fill unset variables from ``.env`` beside ``manage.py`` (``dev.sh`` writes
    one), so only a copy without it shows what an unset variable does; and a build in a
    copy leaves the checkout's static files alone.
    """
    shutil.copytree(ROOT, target, ignore=IGNORED)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("project") / "pms")


@pytest.fixture
def environment(tmp_path):
    """A bare environment: only what each test sets, nothing inherited from the shell."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "pms_backend.settings",
        # The copy shares this checkout's .venv: never reinstall it from there.
        "PMS_SKIP_INSTALL": "1",
    }


def _run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the venv's Python with ``args`` in ``cwd``."""
    return subprocess.run(
        [PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def production(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **env,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": STRONG_KEY,
        "DJANGO_ALLOWED_HOSTS": "shop.example.com,api.example.com",
        "PMS_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "PMS_AUDIT_CHAIN_KEY": AUDIT_CHAIN_KEY,
        **extra,
    }


# --- The secret key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret_key",
    [
        None,
        "",
        "short",
        "django-insecure-" + "x7Qp2Lk9" * 5 + "abcd",  # 60 characters, Django's own prefix
        "ab" * 30,  # long enough, too few distinct characters
    ],
    ids=["unset", "empty", "short", "django-insecure", "repetitive"],
)
def test_production_refuses_a_missing_or_weak_secret_key(project, environment, secret_key):
    env = {**environment, "DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "shop.example.com"}
    if secret_key is not None:
        env["DJANGO_SECRET_KEY"] = secret_key
        assert len(secret_key) == 60 or not secret_key.startswith("django-insecure-")

    result = _run(project, env, "manage.py", "check")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "System check identified no issues" not in result.stdout


@pytest.mark.parametrize("chain_key", [None, "", "too-short"], ids=["unset", "empty", "short"])
def test_production_refuses_a_missing_or_short_audit_chain_key(project, environment, chain_key):
    env = production(environment)
    env.pop("PMS_AUDIT_CHAIN_KEY")
    if chain_key is not None:
        env["PMS_AUDIT_CHAIN_KEY"] = chain_key

    result = _run(project, env, "manage.py", "check")

    assert result.returncode == 2
    assert "PMS_AUDIT_CHAIN_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", "0"),
        ("PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", "-5"),
        ("PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", "nan"),
        ("PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", "inf"),
        ("PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS", "61"),
        ("PMS_WEBSOCKET_KEY_CHECK_SECONDS", "0"),
        ("PMS_WEBSOCKET_KEY_CHECK_SECONDS", "1e400"),
        ("PMS_WEBSOCKET_KEY_CHECK_SECONDS", "two"),
    ],
)
def test_websocket_timers_out_of_bounds_refuse_to_start(project, environment, name, value):
    """A socket's wait for its auth message bounds what unauthenticated sockets hold, and
    the key check how long a revoked key's socket stays open: 0, "nan" or "inf" would
    close every socket at once or never."""
    result = _run(project, production(environment, **{name: value}), "manage.py", "check")

    assert result.returncode != 0
    assert f"{name} must be more than 0 and at most 60 seconds" in result.stderr


def test_websocket_timers_within_bounds_start(project, environment):
    env = production(
        environment,
        PMS_WEBSOCKET_AUTH_TIMEOUT_SECONDS="60",
        PMS_WEBSOCKET_KEY_CHECK_SECONDS="0.5",
    )

    result = _run(project, env, "manage.py", "check")

    assert result.returncode == 0, result.stderr


def test_an_unset_debug_flag_means_production(project, environment):
    result = _run(project, {**environment, "DJANGO_SECRET_KEY": "short"}, "-c", SHOW)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_with_a_strong_key_starts_hardened(project, environment):
    env = production(environment)

    checked = _run(project, env, "manage.py", "check")
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout

    shown = _run(project, env, "-c", SHOW)
    assert shown.returncode == 0, shown.stderr
    values = json.loads(shown.stdout)
    assert values["BASE_DIR"] == str(project)  # the copy, not the checkout, was imported
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == ["shop.example.com", "api.example.com"]
    assert values["SSL_REDIRECT"] is True
    assert values["HSTS"] >= 31_536_000
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True


def test_development_needs_no_key_at_all(project, environment):
    result = _run(project, {**environment, "DJANGO_DEBUG": "true"}, "-c", SHOW)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["DEBUG"] is True
    assert "127.0.0.1" in values["ALLOWED_HOSTS"]


# --- Backends: embedded defaults, or PostgreSQL and Redis ----------------------------------


def test_without_services_the_embedded_defaults_are_used_and_logged(project, environment):
    result = _run(project, production(environment), "-c", SHOW)

    assert result.returncode == 0, result.stderr
    assert (
        "database=sqlite cache=local-memory broker=filesystem "
        "channel_layer=InMemoryChannelLayer" in result.stderr
    )
    values = json.loads(result.stdout)
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["CACHE"].endswith("LocMemCache")
    assert values["BROKER"] == "filesystem://"
    assert values["BROKER_TRANSPORT"] == "pms_backend.filesystem_broker:Transport"


def test_with_database_and_redis_urls_postgresql_and_redis_are_used_and_logged(
    project, environment
):
    env = production(
        environment,
        # Nothing listens there: importing the settings must not connect.
        DATABASE_URL="postgres://pms:hunter2@db.invalid:5432/pms",
        REDIS_URL="redis://cache.invalid:6379/0",
    )

    result = _run(project, env, "-c", SHOW)

    assert result.returncode == 0, result.stderr
    assert (
        "database=postgresql cache=redis broker=redis channel_layer=RedisPubSubChannelLayer"
        in result.stderr
    )
    values = json.loads(result.stdout)
    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert values["CACHE"] == "django_redis.cache.RedisCache"
    assert values["BROKER"] == "redis://cache.invalid:6379/0"
    assert values["BROKER_TRANSPORT"] is None  # the URL's scheme decides
    assert "hunter2" not in result.stderr  # the log line names backends, not credentials


@pytest.mark.parametrize("level", ["WARNING", "warning"])  # worker.sh passes it to Celery too
def test_the_log_level_follows_log_level(project, environment, level):
    env = {**environment, "DJANGO_DEBUG": "true", "LOG_LEVEL": level}

    result = _run(project, env, "-c", SHOW)

    assert result.returncode == 0, result.stderr
    assert "database=" not in result.stderr


def test_cors_origins_and_currency_come_from_the_environment(project, environment):
    env = {
        **environment,
        "DJANGO_DEBUG": "true",
        "CORS_ALLOWED_ORIGINS": "https://shop.example.com,https://m.example.com",
        "PMS_DEFAULT_CURRENCY": "USD",
    }

    values = json.loads(_run(project, env, "-c", SHOW).stdout)

    assert values["CORS"] == ["https://shop.example.com", "https://m.example.com"]
    assert values["CURRENCY"] == "USD"


# --- scripts/build.sh ---------------------------------------------------------------------


def build(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["scripts/build.sh"], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


def test_build_passes_the_deployment_checks_with_a_production_environment(tmp_path, environment):
    project = copy_project(tmp_path / "pms")
    # What scripts/dev.sh leaves in a working copy must not leak into the checks.
    (project / ".env").write_text(f"DJANGO_DEBUG=true\nDJANGO_SECRET_KEY={STRONG_KEY}\n")
    env = production(environment)
    env.pop("DJANGO_DEBUG")

    result = build(project, env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "No changes detected" in result.stdout  # every model change has its migration
    assert "==> build ok" in result.stdout
    assert (project / "staticfiles" / "staticfiles.json").is_file()  # hashed, compressed


def test_build_refuses_without_a_secret_key(project, environment):
    env = production(environment)
    env.pop("DJANGO_SECRET_KEY")

    result = build(project, env)

    assert result.returncode == 2
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "build ok" not in result.stdout


def test_build_refuses_debug_mode(project, environment):
    result = build(project, production(environment, DJANGO_DEBUG="true"))

    assert result.returncode == 2
    assert "DJANGO_DEBUG" in result.stderr
