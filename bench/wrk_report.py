"""wrk helpers shared by the HTTP benches (bench_api.py, bench_search_scale.py): the rotating
search-query script and the parsing of wrk's --latency report."""

from __future__ import annotations

import json
import re

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def search_lua(queries: list[str], key: str = "") -> str:
    """A wrk script that cycles through `queries` on /api/v1/search/ (with a bearer token if `key`)."""
    quoted = ", ".join(json.dumps(q.replace(" ", "+")) for q in queries)
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    return f"""
local queries = {{{quoted}}}
local i = 0
{auth}request = function()
  i = i + 1
  return wrk.format("GET", "/api/v1/search/?k=20&q=" .. queries[(i % #queries) + 1])
end
"""


def _ms(out: str, percentile: str) -> float:
    found = re.search(percentile + r"%\s+([\d.]+)(us|ms|s)\b", out)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")


def wrk_stats(out: str) -> dict:
    """Requests/s, p50/p90/p99 in ms, non-2xx count, socket errors and request count from wrk's output."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(out, "50"),
        "p90": _ms(out, "90"),
        "p99": _ms(out, "99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
    }
