#!/usr/bin/env bash
# make demo: start the whole platform on this machine (three provinces, the
# hub, Temporal, a throwaway PostgreSQL), drive a scripted counter day
# through it, audit every province's ledger, and stop.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/medsettle
log=$(mktemp)
"$bin" dev --listen 127.0.0.1:8080 >"$log" 2>&1 &
dev=$!
trap 'kill -INT $dev 2>/dev/null; wait $dev 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do
	if grep -q "medsettle listening" "$log"; then break; fi
	if ! kill -0 $dev 2>/dev/null; then cat "$log"; exit 1; fi
	sleep 0.5
done
grep -v "^time=" "$log" | head -8
echo
"$bin" demo --url http://127.0.0.1:8080
echo
for p in 150000 420000 230000; do
	dsn=$(grep "province $p:" "$log" | awk '{print $5}')
	printf 'province %s: ' "$p"
	"$bin" audit verify --dsn "$dsn" | tail -1
done
