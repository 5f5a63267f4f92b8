#!/usr/bin/env bash
# Create or refresh the virtual environment at .venv from pyproject.toml.
# It reinstalls only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=.venv/.atlas-deps

# The browser tests (tests/e2e) drive Debian's Chromium; Playwright never downloads a browser.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser tests ..."
        apt-get update -qq && apt-get install -y -qq chromium \
            || echo "could not install chromium: the browser tests will fail in CI and skip elsewhere" >&2
    else
        echo "note: /usr/bin/chromium is missing and this is not root: the browser tests (tests/e2e) will skip;" >&2
        echo "      install it with 'sudo apt-get install chromium' (or run scripts/setup.sh as root)" >&2
    fi
fi
want=$(sha256sum pyproject.toml | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "setting up .venv (first time: about a minute; torch comes from this machine's disk) ..."
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "$want" > "$stamp"
