"""Production settings: `check --deploy` is clean, and bad configuration stops the start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.atlas.c2pa_helpers import write_pair

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow  # each test starts Python (manage.py, gunicorn, celery) in a subprocess
BASE_ENV = {
    "DJANGO_SETTINGS_MODULE": "atlas.settings.production",
    "SECRET_KEY": "k" * 20 + "-Xq9!vR2#pL7@wN4$zT8^bM1&cY6*hJ3(" + "e" * 20,
    "DATABASE_URL": "postgres://atlas@127.0.0.1:5432/atlas_deploy_check",
    "ALLOWED_HOSTS": "atlas.example.org",
    "API_CACHE_URL": "redis://127.0.0.1:6379/1",
}


@pytest.fixture(scope="module")
def signing_pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    return write_pair(tmp_path_factory.mktemp("c2pa"), name="operator")


@pytest.fixture
def good_env(signing_pair) -> dict:
    key, cert, ca = signing_pair
    return {**BASE_ENV, "ATLAS_C2PA_KEY_FILE": str(key), "ATLAS_C2PA_CERT_FILE": str(cert), "ATLAS_C2PA_TRUST_ANCHORS_FILE": str(ca)}


def _manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "SECRET_KEY", "DEBUG", "ATLAS_C2PA"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_at_warning_level(good_env, tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_a_short_secret_key(good_env, tmp_path):
    result = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_sqlite(good_env, tmp_path):
    result = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db"})
    assert result.returncode != 0
    assert "PostgreSQL" in result.stderr


def test_production_refuses_per_process_throttles_unless_told(good_env, tmp_path):
    result = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "API_CACHE_URL": ""})
    assert result.returncode != 0
    assert "API_CACHE_URL" in result.stderr and "API_THROTTLE_PER_PROCESS" in result.stderr
    told = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "API_CACHE_URL": "",
                                 "API_THROTTLE_PER_PROCESS": "true"})
    assert told.returncode == 0, told.stderr


def test_a_bad_trusted_proxy_setting_stops_the_start(good_env, tmp_path):
    result = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "TRUSTED_PROXIES": "10.0.0.0/8,nginx"})
    assert result.returncode != 0 and "TRUSTED_PROXIES" in result.stderr and "'nginx'" in result.stderr


def test_s3_storage_needs_a_bucket(good_env, tmp_path):
    result = _manage("check", env={**good_env, "ATLAS_VAR_DIR": str(tmp_path), "STORAGE_BACKEND": "s3"})
    assert result.returncode != 0
    assert "AWS_STORAGE_BUCKET_NAME" in result.stderr


def test_check_deploy_is_clean_with_a_secret_file_s3_storage_and_json_logs(good_env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(BASE_ENV["SECRET_KEY"] + "\n")
    env = {
        **good_env, "ATLAS_VAR_DIR": str(tmp_path), "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret),
        "STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": "atlas", "LOG_FORMAT": "json",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_procfile_and_units_run_the_four_processes():
    procfile = (ROOT / "Procfile").read_text()
    assert "gunicorn -c scripts/gunicorn.conf.py atlas.wsgi" in procfile
    assert "worker -Q default,indexing" in procfile
    assert "worker -Q generation -c 1 --prefetch-multiplier 1" in procfile
    assert "celery -A atlas beat" in procfile
    units = {p.name for p in (ROOT / "scripts" / "systemd").glob("*.service")}
    assert units == {"atlas-web.service", "atlas-worker.service", "atlas-gpu-worker.service", "atlas-beat.service"}


def test_gunicorn_config_loads(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "scripts/gunicorn.conf.py", "--check-config", "atlas.wsgi"],
        cwd=ROOT, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _gunicorn_instance(monkeypatch, base: Path) -> dict:
    """scripts/gunicorn.conf.py as one gunicorn master reads it, and its on_starting hook run."""
    import runpy

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(base))
    monkeypatch.delenv("ATLAS_PROMETHEUS_BASE", raising=False)
    config = runpy.run_path(str(ROOT / "scripts" / "gunicorn.conf.py"))
    config["on_starting"](None)
    config["dir"] = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    return config


def test_each_gunicorn_instance_has_its_own_prometheus_directory(tmp_path, monkeypatch):
    base = tmp_path / "not-yet" / "prometheus"  # created if missing
    first = _gunicorn_instance(monkeypatch, base)
    assert first["dir"].is_dir() and first["dir"].parent == base
    samples = first["dir"] / "histogram_1234.db"
    samples.write_bytes(b"first instance's samples")
    second = _gunicorn_instance(monkeypatch, base)  # another instance on the same host starts
    assert second["dir"] != first["dir"] and second["dir"].is_dir()
    assert samples.read_bytes() == b"first instance's samples"  # never wiped by the other one
    assert list(second["dir"].iterdir()) == []  # a fresh start counts nothing of an earlier run
    second["on_exit"](None)
    assert not second["dir"].exists() and samples.exists()


def _without_settings_module(*command: str, var: Path | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))}
    if var is not None:  # should it start after all, it must not touch the checkout's var/ broker
        clean["ATLAS_VAR_DIR"] = str(var)
    return subprocess.run(command, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120)


def test_the_web_server_refuses_to_start_without_a_settings_module():
    result = _without_settings_module(sys.executable, "-c", "import atlas.wsgi")
    assert result.returncode != 0 and "DJANGO_SETTINGS_MODULE is not set" in result.stderr
    explicit = subprocess.run([sys.executable, "-c", "import atlas.wsgi"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "DJANGO_SETTINGS_MODULE": "atlas.settings.test"}, timeout=120)
    assert explicit.returncode == 0, explicit.stderr


def test_celery_refuses_to_start_without_a_settings_module(tmp_path):
    celery = str(Path(sys.executable).with_name("celery"))
    result = _without_settings_module(celery, "-A", "atlas", "worker", "--pool", "solo", var=tmp_path)
    assert result.returncode != 0 and "DJANGO_SETTINGS_MODULE is not set" in result.stderr
    # Django-free code still imports the project's vocabularies without any settings.
    assert _without_settings_module(sys.executable, "-c", "import atlas.skin, atlas.taxonomy").returncode == 0


def test_every_process_line_and_script_names_its_settings_module():
    assert "DJANGO_SETTINGS_MODULE=" in (ROOT / "scripts/run.sh").read_text()
    assert "DJANGO_SETTINGS_MODULE=atlas.settings.production" in (ROOT / "scripts/systemd/atlas.env.example").read_text()
    for unit in (ROOT / "scripts/systemd").glob("*.service"):
        assert "EnvironmentFile=/etc/atlas/atlas.env" in unit.read_text(), unit.name


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("unset", "ATLAS_C2PA_KEY_FILE is not set"),
        ("expired", "expired on"),
        ("other_key", "does not match"),
        ("demo", "local demo pair (NOT FOR PRODUCTION)"),
    ],
)
def test_production_refuses_a_missing_expired_mismatched_or_demo_signing_key(good_env, tmp_path, problem, message):
    from atlas.content_credentials import demo_pair_write

    env = {**good_env, "ATLAS_VAR_DIR": str(tmp_path)}
    if problem == "unset":
        env["ATLAS_C2PA_KEY_FILE"] = ""
    elif problem == "demo":
        env["ATLAS_C2PA_KEY_FILE"], env["ATLAS_C2PA_CERT_FILE"], _ = map(str, demo_pair_write(tmp_path / "c2pa"))
    else:
        options = {"valid_from_days": -40, "valid_days": 30} if problem == "expired" else {"other_key": True}
        env["ATLAS_C2PA_KEY_FILE"], env["ATLAS_C2PA_CERT_FILE"], _ = map(str, write_pair(tmp_path, **options))
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "content credentials (C2PA)" in result.stderr and message in result.stderr
