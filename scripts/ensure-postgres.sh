#!/usr/bin/env bash
# The SQL source tests start a throw-away PostgreSQL server from Debian's binaries
# (/usr/lib/postgresql/*/bin). Install Debian's package when they are missing and we may
# (root with apt-get); otherwise those tests skip and say why.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql (Debian package) for the SQL source tests ..."
    if ! { apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }; then
        echo "postgresql could not be installed: the PostgreSQL tests will be skipped" >&2
    fi
else
    echo "PostgreSQL binaries not found and cannot be installed here: the PostgreSQL tests will be skipped" >&2
fi
