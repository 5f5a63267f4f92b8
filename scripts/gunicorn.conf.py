"""gunicorn settings for Atlas: `gunicorn -c scripts/gunicorn.conf.py atlas.wsgi`.

Every value can be overridden from the environment (GUNICORN_BIND, WEB_CONCURRENCY, ...).
Workers are sync processes: a search embeds its query on the CPU with ONNX Runtime (no torch
in web processes; a few ms), so threads would only contend for the GIL. Each worker loads the search index once and reloads it when
a new version is published (docs/operations.md).
"""

import os
import shutil
import tempfile
from pathlib import Path

from atlas.blas import web_process_blas_threads

# Before the master's start-up check loads numpy: the workers fork from it and keep its setting.
web_process_blas_threads()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(min(8, 2 * (os.cpu_count() or 1) + 1))))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))  # photo search and uploads decode images
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak (PIL, torch allocator) never grows without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
limit_request_line = 8190
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")  # the reverse proxy
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log (Atlas logs requests itself)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Don't load the app in the master: each worker loads its query encoder (ONNX Runtime, no
# torch) and opens the index itself after fork. The master sets up Django only to check that
# the query model's ONNX export matches the configured checkpoint (on_starting).
preload_app = False

# Prometheus: every worker writes its samples under one directory; /metrics adds them up.
# PROMETHEUS_MULTIPROC_DIR (default: <tmp>/atlas-prometheus) is a base, created if missing;
# each gunicorn instance (master) makes its own fresh directory inside it at start, so two
# instances on one host never add up or wipe each other's samples, and a restart never
# counts the previous run's. The master removes its own directory when it exits.
_metrics_base = Path(os.environ.get("ATLAS_PROMETHEUS_BASE") or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
                     or Path(tempfile.gettempdir()) / "atlas-prometheus")
# Remembered for a reload (SIGHUP reads this file again; PROMETHEUS_MULTIPROC_DIR then names the instance's).
os.environ["ATLAS_PROMETHEUS_BASE"] = str(_metrics_base)


def on_starting(server) -> None:
    _metrics_base.mkdir(parents=True, exist_ok=True)
    instance = tempfile.mkdtemp(prefix=f"gunicorn-{os.getpid()}-", dir=_metrics_base)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = instance  # the workers are forked after this
    _refuse_a_stale_query_model()


def _refuse_a_stale_query_model() -> None:
    """Refuse to start when the ONNX query towers belong to another model version than the
    configured checkpoint (search/checks.py): every search would rank in the wrong space.
    gunicorn prints a RuntimeError raised here as "Error: ..." and exits 1."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return  # atlas.wsgi refuses with its own message
    import django

    django.setup()  # settings and apps only: no database connection, no torch
    from search.checks import query_runtime_problem

    problem = query_runtime_problem()
    if problem:
        raise RuntimeError(f"refusing to start: web processes cannot embed search queries: {problem}")


def on_exit(server) -> None:
    instance = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if instance and Path(instance).parent == _metrics_base:
        shutil.rmtree(instance, ignore_errors=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
