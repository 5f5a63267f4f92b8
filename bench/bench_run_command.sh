#!/usr/bin/env bash
# Time the README's run command on a fresh clone: first run (install, migrate, demo atlas,
# shipped demo models, index) and second run, each until the site answers at its URL.
#   bash bench/bench_run_command.sh [PORT]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
port=${1:-8765}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/atlas"
cd "$work/atlas"

run_once() {
    local label=$1 start end pid
    start=$(date +%s.%N)
    # Its own session, so the server and the worker can be stopped together.
    PORT=$port setsid make run > "$work/$label.log" 2>&1 &
    pid=$!
    until curl -fs -o /dev/null "http://127.0.0.1:$port/"; do
        kill -0 $pid 2>/dev/null || { echo "$label: make run exited"; tail -20 "$work/$label.log"; exit 1; }
        sleep 1
    done
    end=$(date +%s.%N)
    printf '%s run: %.1f s until http://127.0.0.1:%s/ answered\n' "$label" "$(echo "$end - $start" | bc)" "$port"
    kill -TERM -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    sleep 2
}

run_once first
grep -E "^(demo atlas|search model|search index|GAN|staff)" "$work/first.log" || true
run_once second
