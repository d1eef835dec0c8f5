#!/usr/bin/env bash
# The SQL source tests start a throw-away PostgreSQL server from its binaries, found as
# tests/external_tools.py says (LOOML_PG_BIN, else initdb on PATH, else the newest
# /usr/lib/postgresql/*/bin): the tests look for them the same way. When they are missing,
# install Debian's package if we may (root, or sudo without a password, with apt-get). Still
# missing: in CI (CI=true) this fails, as the tests would; elsewhere those tests skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."
find_it() { "${PYTHON:-python3}" tests/external_tools.py postgres >/dev/null 2>&1; }
find_it && exit 0
. scripts/install-debian-package.sh
install_debian_package postgresql "the SQL source tests" --no-install-recommends || true
find_it && exit 0
why=$("${PYTHON:-python3}" tests/external_tools.py postgres 2>&1 >/dev/null || true)
fail_in_ci "$why" "the PostgreSQL tests"
