#!/usr/bin/env bash
# What the test suite needs besides cargo: Debian's chromium, which the HTML report's test runs
# headless to render the page and take a screenshot (tests/report/html.rs). Idempotent; run as
# root (CI and the developers' machines are), before `cargo test`.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
chromium --version
