#!/usr/bin/env bash
# Back up Atlas into a new directory: the database (pg_dump custom format, or SQLite's online
# backup API), the media through the storage API (local files or the S3 bucket) as media.tar,
# the search index this host serves (index.tar) and model files under the var dir
# (models.tar), with checksums. Usage: scripts/backup.sh DEST_DIR
# Run it with the service's environment (DJANGO_SETTINGS_MODULE, DATABASE_URL, ...).
# Restore: scripts/restore.sh DEST_DIR (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
dest=${1:?usage: scripts/backup.sh DEST_DIR}

$PY manage.py ops_backup create "$dest"
cat > "$dest/MANIFEST" <<MANIFEST
created: $(date -u +%Y-%m-%dT%H:%M:%SZ)
code: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)
MANIFEST
(cd "$dest" && sha256sum -- db.* *.tar > SHA256SUMS)
ls -l "$dest"
