"""The test tiers (tests/conftest.py): markers select them, and a tier whose needs are missing
skips with the reason locally but fails in CI (CI=true)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require, require_root
from tests.ops.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # runs pytest in subprocesses


def _pytest(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS") and not k.startswith("DJANGO_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=300)


def test_markers_select_the_tiers():
    fast = _pytest("--collect-only", "-m", "not (postgres or broker or browser or ops or slow or s3)", "tests/ops",
                   "tests/generation", "tests/e2e", "tests/api/test_fuzz.py", "tests/atlas/test_ingestion.py",
                   "tests/search/test_index.py")
    assert fast.returncode == 0, fast.stdout[-2000:] + fast.stderr[-2000:]
    collected = fast.stdout
    for module in ("tests/generation/test_gaps_broker.py", "tests/ops/test_faults.py", "tests/e2e/",
                   "tests/ops/test_backup.py", "tests/ops/test_deploy.py", "tests/ops/test_storage_s3.py",
                   "tests/generation/test_gaps_locks.py", "tests/api/test_fuzz.py"):
        assert module not in collected, f"{module} needs a tier marker"
    assert "tests/atlas/test_ingestion.py::" in collected and "tests/search/test_index.py::" in collected
    only_ops = _pytest("--collect-only", "-m", "ops", "tests/ops")
    assert "tests/ops/test_faults.py::" in only_ops.stdout and "tests/ops/test_health.py" not in only_ops.stdout


def test_the_broker_tier_skips_without_redis_locally_and_fails_in_ci():
    gone = f"redis://127.0.0.1:{free_port()}/5"
    target = "tests/generation/test_gaps_broker.py::test_overlapping_jobs_on_two_workers_stop_at_the_target"
    local = _pytest(target, ATLAS_GAPS_TEST_BROKER=gone)
    assert local.returncode == 0 and "1 skipped" in local.stdout and "cannot be reached" in local.stdout, local.stdout[-2000:]
    ci = _pytest(target, ATLAS_GAPS_TEST_BROKER=gone, CI="true")
    assert ci.returncode != 0 and "CI must run this test" in ci.stdout and "skipped" not in ci.stdout, ci.stdout[-2000:]


def test_a_missing_redis_server_binary_skips_locally_and_fails_in_ci(tmp_path):
    # A PATH without redis-server (the suite runs as `python -m pytest`, so it needs no PATH).
    target = "tests/ops/test_faults.py::test_redis_down_browsing_and_search_work_jobs_refused_then_resume"
    local = _pytest(target, PATH=str(tmp_path))
    assert local.returncode == 0 and "1 skipped" in local.stdout and "redis-server binary is missing" in local.stdout, \
        local.stdout[-2000:]
    ci = _pytest(target, PATH=str(tmp_path), CI="true")
    assert ci.returncode != 0 and "CI must run this test" in ci.stdout and "skipped" not in ci.stdout, ci.stdout[-2000:]


def test_requirements_skip_locally_and_fail_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
        require_root("stop and start the PostgreSQL cluster")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run this test, but needs root"):
        require_root("stop and start the PostgreSQL cluster")
    require(True, "never raised when the need is met")
