#!/usr/bin/env bash
# The report tests draw the HTML report in a real headless Chromium, found as
# tests/external_tools.py says (LOOML_CHROMIUM, else chromium / chromium-browser / google-chrome on
# PATH): the tests look for it the same way. When it is missing, install Debian's package if we
# may (root, or sudo without a password, with apt-get). Still missing: in CI (CI=true) this
# fails, as the tests would; elsewhere those tests skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
find_it() { "${PYTHON:-python3}" tests/external_tools.py chromium >/dev/null 2>&1; }
find_it && exit 0
. scripts/install-debian-package.sh
install_debian_package chromium "the report tests" || true
find_it && exit 0
why=$("${PYTHON:-python3}" tests/external_tools.py chromium 2>&1 >/dev/null || true)
fail_in_ci "$why" "the browser tests"
