#!/usr/bin/env bash
# Prices the worked examples with `medsettle price` and prints one line each.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=bin/medsettle
printf '%-10s %-6s %-4s %12s %10s %10s %10s %10s %10s  %s\n' case region med medfee hifp supp maf acct cash outcome
for f in testdata/golden/*.json; do
  name=$(basename "$f" .json)
  req=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["request"]))' "$f" 2>/dev/null || true)
  [ -n "$req" ] || { echo "python3 is needed to read $f"; exit 1; }
  out=$(printf '%s' "$req" | "$bin" price || true)
  python3 - "$name" "$req" "$out" <<'PY'
import json, sys
name, req, out = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
if "error" in out:
    print(f"{name:<10} {req['insuplc_admdvs']:<6} {req['med_type']:<4} {'':>12} {'':>10} {'':>10} {'':>10} {'':>10} {'':>10}  refused: {out['error']['code']}")
else:
    s = out["setlinfo"]
    # A person has one supplementary fund: 大病保险 (hifmi) or 大额补助 (hifob).
    supp = s['hifmi_pay'] if s['hifmi_pay'] != '0.00' else s['hifob_pay']
    print(f"{name:<10} {req['insuplc_admdvs']:<6} {req['med_type']:<4} {s['medfee_sumamt']:>12} {s['hifp_pay']:>10} {supp:>10} {s['maf_pay']:>10} {s['acct_pay']:>10} {s['psn_cash_pay']:>10}  ok")
PY
done
