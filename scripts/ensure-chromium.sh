#!/usr/bin/env bash
# The report tests draw the HTML report in a real headless Chromium. Install Debian's
# package when it is missing and we may (root with apt-get); otherwise those tests skip
# and say why.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the report tests ..."
    if ! { apt-get update -qq >/dev/null &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
        echo "chromium could not be installed: the browser tests will be skipped" >&2
    fi
else
    echo "chromium not found and cannot be installed here: the browser tests will be skipped" >&2
fi
