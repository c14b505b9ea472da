#!/usr/bin/env bash
# Issue 16's measurements, in one run: training speed idle and with one busy process (the
# trainer's thread choice against fixed 1 and N threads), then the quickstart with one busy
# process beside it, graded by the Relics classifier. Writes assets/bench/under_load.{json,txt}
# and assets/bench/quickstart_under_load.{json,txt}. Run from the repository root:
#   bash assets/bench/under_load.sh
set -euo pipefail
OUT=assets/bench
uptime | tee "$OUT/under_load.txt"
dit-mini bench --under-load 1 --load-seconds 30 --out "$OUT/under_load.json" | tee -a "$OUT/under_load.txt"
uptime | tee -a "$OUT/under_load.txt"

RUN=$(mktemp -d)/quickstart
python3 -c "while True: pass" & SPIN=$!
trap 'kill $SPIN 2>/dev/null || true' EXIT
# the progress bar's updates (carriage returns) are left out of the log; its other lines stay
{ uptime; /usr/bin/time -f "wall %e s" dit-mini quickstart --out "$RUN"; uptime; } 2>&1 \
  | tr '\r' '\n' | sed 's/dit-mini: /\ndit-mini: /' | grep -v -e '^train:' -e '^$' | tee "$OUT/quickstart_under_load.txt"
kill $SPIN
dit-mini fid --checkpoint "$RUN/checkpoint.pt" --n 500 --features relic --steps 20 --cfg-scale 3 --json \
  | tee "$OUT/quickstart_under_load.json" | tee -a "$OUT/quickstart_under_load.txt"
cp "$RUN/samples.png" "$OUT/quickstart_under_load.png"
