#!/usr/bin/env bash
# Run Atlas locally with the demo atlas: SQLite and the filesystem broker under var/,
# one Celery worker (all queues, embedded beat) and the development server.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-atlas.settings.local}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
PY=.venv/bin/python

scripts/setup.sh
$PY manage.py migrate --noinput
$PY manage.py prepare_demo

mkdir -p var/log
.venv/bin/celery -A atlas worker -B -Q default,indexing,generation -c 1 --prefetch-multiplier 1 \
    --loglevel INFO --logfile var/log/worker.log --schedule var/celerybeat-schedule &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM

echo
echo "Atlas is running at http://$HOST:$PORT/  (admin: http://$HOST:$PORT/admin/, demo staff login: demo / demo-password)"
echo "The images are PROCEDURAL DEMO DATA, not clinical photographs. Ctrl-C stops the server and the worker."
echo
$PY manage.py runserver "$HOST:$PORT" --noreload
