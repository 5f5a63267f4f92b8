#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an EMPTY database and an EMPTY storage
# (a restore never merges). PostgreSQL: create the empty database first (createdb atlas).
# Usage: scripts/restore.sh BACKUP_DIR   (with the service's environment variables)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
src=${1:?usage: scripts/restore.sh BACKUP_DIR}

if ! (cd "$src" && sha256sum --check --quiet SHA256SUMS); then
    echo "restore: $src fails its checksums; nothing was changed" >&2
    exit 2
fi
$PY manage.py ops_backup restore "$src"
