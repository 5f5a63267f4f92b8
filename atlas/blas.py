"""How many OpenBLAS threads a web process uses: one. Imports nothing but os, so the process
entry points (atlas/wsgi.py, scripts/gunicorn.conf.py) call it before numpy loads; OpenBLAS
reads the variable once, when numpy is first imported.

Why one: a query's matrix products are small (the exact re-ranking of a few thousand IVF
candidates), several web workers share the host's cores, and OpenBLAS's extra threads spin
after each product or wait for a core. Measured per re-ranking on a 2-core machine: 8.6x the
CPU when quiet, 4.9x the CPU and wall time when busy (bench/bench_blas_threads.py,
docs/benchmarks.md). An operator's own
OPENBLAS_NUM_THREADS wins.
"""

import os

WEB_BLAS_THREADS = "1"


def web_process_blas_threads() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", WEB_BLAS_THREADS)
