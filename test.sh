#!/usr/bin/env bash
# The test command (README): installs the real tools the tests drive when they are missing
# (tests/support/setup.sh), then runs every test of the workspace. Needs Rust and kubectl 1.32;
# on Debian/Ubuntu it installs the rest with apt-get (as root, or through sudo) and pip.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v kubectl >/dev/null; then
  echo "test.sh: kubectl (1.32) is required by the integration tests and was not found" >&2
  exit 1
fi

# The real tools the tests drive (Prometheus, tmux, Chromium, the Python kubernetes client and
# Chaos Toolkit), installed when missing.
bash tests/support/setup.sh

cargo test --workspace "$@"
