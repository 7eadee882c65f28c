"""Logs say each thing once: the backends line once per serving process (and not from
every ``manage.py`` command), each request warning once, no kombu "No hostname" warning.

Each case runs a fresh interpreter with the project's real logging configuration.
"""

from __future__ import annotations

import os

import pytest

from tests.unit.test_settings import _run, copy_project

BACKENDS = "backends: database="

# A development process answering a few requests that Django logs as warnings.
REQUESTS = """
import pms_backend.wsgi
from django.test import Client
client = Client(HTTP_HOST="127.0.0.1")
client.get("/api/v1/no-such-route/")
client.get("/no-such-page/")
"""

# What a worker's start does with the broker connection (Celery's banner describes it).
BROKER = """
import django
django.setup()
from pms_backend.celery import app
with app.connection_for_write() as connection:
    print(connection.as_uri())
    connection.info()
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("project") / "pms")


@pytest.fixture
def development(tmp_path):
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "pms_backend.settings",
        "PMS_SKIP_INSTALL": "1",
        "DJANGO_DEBUG": "true",
        "LOG_LEVEL": "INFO",
    }


def test_a_web_process_logs_its_backends_once(project, development):
    # Both entry points in one process (as in some tests): still one line.
    result = _run(project, development, "-c", "import pms_backend.wsgi, pms_backend.asgi")

    assert result.returncode == 0, result.stderr
    assert result.stderr.count(BACKENDS) == 1, result.stderr


@pytest.mark.parametrize(
    "command", [["check"], ["shell", "-c", "pass"], ["showmigrations", "audit"]]
)
def test_management_commands_do_not_log_the_backends(project, development, command):
    result = _run(project, development, "manage.py", *command)

    assert result.returncode == 0, result.stderr
    assert BACKENDS not in result.stderr, result.stderr


def test_a_worker_logs_its_backends_at_start(project, development):
    script = (
        "import django; django.setup()\n"
        "from celery.signals import worker_init\n"
        "import pms_backend.celery\n"
        "worker_init.send(sender=None)\n"
        "worker_init.send(sender=None)\n"
    )
    result = _run(project, development, "-c", script)

    assert result.returncode == 0, result.stderr
    assert result.stderr.count(BACKENDS) == 1, result.stderr


def test_each_request_warning_is_logged_once(project, development):
    result = _run(project, development, "-c", REQUESTS)

    assert result.returncode == 0, result.stderr
    for path in ("/api/v1/no-such-route/", "/no-such-page/"):
        lines = [line for line in result.stderr.splitlines() if path in line]
        assert len(lines) == 1, (path, result.stderr)
        assert "Not Found" in lines[0]


def test_the_embedded_broker_names_no_missing_host(project, development):
    result = _run(project, development, "-c", BROKER)

    assert result.returncode == 0, result.stderr
    assert "No hostname was supplied" not in result.stderr, result.stderr
