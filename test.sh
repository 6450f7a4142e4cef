#!/usr/bin/env bash
# The test command (README): installs the real tools the tests drive when they are missing,
# then runs every test of the workspace. Needs Rust and kubectl 1.32; on Debian/Ubuntu it
# installs Prometheus and tmux with apt-get (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v kubectl >/dev/null; then
  echo "test.sh: kubectl (1.32) is required by the integration tests and was not found" >&2
  exit 1
fi

# Prometheus (a real one scrapes `playbook sim serve`) and tmux (a pseudo-terminal for the REPL).
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v tmux >/dev/null || missing+=(tmux)
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "test.sh: installing ${missing[*]} with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --workspace "$@"
