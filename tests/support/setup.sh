#!/usr/bin/env bash
# What the test suite drives besides cargo and kubectl, installed when missing: Debian's
# prometheus (a real one scrapes `playbook sim serve`) and prometheus-pushgateway (that
# `run --pushgateway` pushes to), tmux (the REPL's terminal), chromium (renders the HTML report
# headless, tests/report/html.rs) and buildah (builds and runs the container image, tests/image)
# with apt-get, as root or through
# sudo; then the Python packages (tests/support/setup-python.sh). Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
command -v tmux >/dev/null || missing+=(tmux)
command -v chromium >/dev/null || missing+=(chromium)
command -v buildah >/dev/null || missing+=(buildah)
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! python3 -m venv --help >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
bash "$here/setup-python.sh" >/dev/null
