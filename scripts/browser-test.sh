#!/usr/bin/env bash
# Browser tests of the bureau console: installs Debian's Chromium when it is
# missing, then runs TestBrowserAgainstDev (medsettle dev, a scripted counter
# day, the console in headless Chromium) with the test required to run.
# Screenshots, the dev log and the demo's output go to $MEDSETTLE_ARTIFACTS
# (default: ./artifacts)/browser.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
export PATH="/usr/local/go/bin:$PATH"
if ! command -v chromium >/dev/null && [[ ! -x /usr/bin/chromium ]]; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-noto-cjk
fi
export MEDSETTLE_BROWSER_TESTS=1
export MEDSETTLE_ARTIFACTS="${MEDSETTLE_ARTIFACTS:-$PWD/artifacts}"
mkdir -p "$MEDSETTLE_ARTIFACTS"
go test -count=1 -run 'TestBrowserAgainstDev' -v -timeout 20m ./adapters/console/
echo "screenshots in $MEDSETTLE_ARTIFACTS/browser"
