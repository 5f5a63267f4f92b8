"""Web processes run numpy's OpenBLAS on one thread (atlas/blas.py): set by both entry points
before numpy loads, and read back from OpenBLAS itself, not from the environment."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

OPENBLAS_THREADS = """
import ctypes, glob, os, numpy
lib = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "libscipy_openblas*"))
print("THREADS", ctypes.CDLL(lib[0]).scipy_openblas_get_num_threads64_())
"""


def _threads(entry: str, **env) -> int:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    clean |= {"DJANGO_SETTINGS_MODULE": "atlas.settings.test", **env}
    done = subprocess.run([sys.executable, "-c", entry + OPENBLAS_THREADS], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(next(line for line in done.stdout.splitlines() if line.startswith("THREADS")).split()[1])


def test_a_plain_process_gets_openblas_default_so_the_check_can_fail():
    assert _threads("") == os.cpu_count()


def test_the_wsgi_module_gives_one_thread():
    assert _threads("import atlas.wsgi\n") == 1


def test_the_gunicorn_config_gives_one_thread_before_the_master_loads_numpy():
    assert _threads("exec(open('scripts/gunicorn.conf.py').read())\n") == 1


def test_an_operators_own_value_wins():
    cores = os.cpu_count()  # OpenBLAS caps the value at the cores; not 1, which the default gives
    assert cores > 1 and _threads("import atlas.wsgi\n", OPENBLAS_NUM_THREADS=str(cores)) == cores
