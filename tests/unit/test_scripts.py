"""What the scripts print about their environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_script_names_its_services_without_their_passwords():
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        # Collecting tests needs neither service, so nothing has to listen there.
        "DATABASE_URL": "postgres://pms:s3cr3t-db@db.invalid:5432/pms",
        "REDIS_URL": "redis://:s3cr3t-cache@cache.invalid:6379/5",
    }

    result = subprocess.run(
        ["scripts/test.sh", "--collect-only", "-q", "-p", "no:cacheprovider", __file__],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    banner = next(line for line in result.stderr.splitlines() if line.startswith("==> database"))
    assert "postgres://pms:***@db.invalid:5432/pms" in banner
    assert "redis://:***@cache.invalid:6379/5" in banner
    assert "s3cr3t" not in result.stdout + result.stderr
