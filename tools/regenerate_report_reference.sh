#!/usr/bin/env bash
# Rewrites tests/report/reference_first_screen.png, the first screen of the bundled model's report as
# headless Chromium renders it, which the report_browser test compares with. Run after a deliberate
# change of the report's layout, and look at the picture before committing it.
# Usage: bash tools/regenerate_report_reference.sh [SIEVE_CLI]   (default build/release/sieve)
set -euo pipefail
cd "$(dirname "$0")/.."
/usr/bin/python3 tests/report/browser_test.py "${1:-build/release/sieve}" --regenerate
