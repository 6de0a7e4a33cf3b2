#!/usr/bin/env bash
# The report test renders report.html in headless Chromium. Install Debian's chromium when it is
# missing and we may (root + apt); otherwise that one test skips and says why.
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "note: could not install chromium; the report rendering test will skip"
else
  echo "note: chromium not found; the report rendering test will skip"
fi
exit 0
