#!/usr/bin/env bash
# The shipped scaling study (assets/scaling/scaling.jsonl and scaling.png): 9 toy DiTs, 4,800
# training images each, one CPU thread (L/2, the ninth, was added by a later run: see RESULTS.md).
# The results file is appended to, so a rerun after a kill continues with the
# missing configs (and a rerun of a finished study only prints the table and redraws the plot).
set -euo pipefail
cd "$(dirname "$0")/../.."
OMP_NUM_THREADS=1 nice -n 10 python -m dit_mini.studies.scaling --threads 1 --images 4800 --n-eval 100 \
    --grid S/8 S/4 S/2 M/8 M/4 M/2 L/8 L/4 L/2 \
    --out assets/scaling/scaling.jsonl
python -m dit_mini.course.viz_dps assets/scaling/scaling.jsonl assets/scaling/scaling.png
