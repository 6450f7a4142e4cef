#!/usr/bin/env bash
# Installs the Python packages the integration tests drive `playbook sim serve` with (the official
# `kubernetes` client, Chaos Toolkit 1.19 with chaostoolkit-kubernetes) into a venv under
# target/, once. Prints the venv's path. Fails (never skips) when PyPI cannot be reached.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${PLAYBOOK_PY_VENV:-$root/target/pytest-venv/venv}"
stamp="$venv/.playbook-installed-v1"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9  # tests run in parallel: one installs, the others wait for it
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv" >&2
  timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes==37.0.2" "chaostoolkit==1.19.0" "chaostoolkit-kubernetes==0.39.0" >&2
  touch "$stamp"
fi
echo "$venv"
