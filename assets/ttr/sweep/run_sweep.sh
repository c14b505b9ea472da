#!/bin/bash
# The equal-images recipe sweep of assets/ttr/RESULTS.md (table 1), as it was run: every recipe
# in parallel on one GPU (an H200; fp32, TF32 off), T seconds at most each; results in $OUT.
# From the repo root:  OUT=/some/dir T=250 bash assets/ttr/sweep/run_sweep.sh
# (The second batch of rows, from b16_lr4e-3 on, ran as a separate call with T=135.)
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
pip install -e . --no-deps -q >/dev/null 2>&1
python -c "
from dit_mini.data.relics import make_relics
make_relics(20000, 0); make_relics(5000, 20000); make_relics(100, 20001)
" || exit 1
nvidia-smi --query-gpu=name --format=csv,noheader
FL='{"objective":"flow","time_sampling":"logit_normal"}'
E5=500,1000,1500,2000,3000
run() { name=$1; shift; timeout ${T:-250} python assets/ttr/sweep/sweep.py --name $name --cfg 1,3,5 "$@" > $OUT/log_$name.txt 2>&1 & }
run flow_lr1e-3       --diff "$FL" --lr 1e-3 --evals $E5
run flow_lr2e-3       --diff "$FL" --lr 2e-3 --evals $E5
run flow_lr4e-3       --diff "$FL" --lr 4e-3 --evals $E5
run flow_unif_lr2e-3  --diff '{"objective":"flow"}' --lr 2e-3 --evals $E5
run v_cos_minsnr      --diff '{"objective":"v","schedule":"cosine","weighting":"min_snr"}' --lr 2e-3 --evals $E5
run v_cos             --diff '{"objective":"v","schedule":"cosine"}' --lr 2e-3 --evals $E5
run eps_lin_lr2e-3    --diff '{"objective":"eps","schedule":"linear"}' --lr 2e-3 --evals $E5
run eps_lin_ref       --diff '{"objective":"eps","schedule":"linear"}' --lr 3e-4 --batch 64 --ema 0.999 --evals 250,500,750,1000,1500
run eps_lin_ref_tiny  --preset tiny --diff '{"objective":"eps","schedule":"linear"}' --lr 3e-4 --batch 64 --ema 0.999 --evals 250,500,750,1000,1500
run flow_tiny_lr1e-3  --preset tiny --diff "$FL" --lr 1e-3 --evals $E5
run flow_w128d4       --model '{"hidden_size":128,"num_heads":4,"depth":4}' --diff "$FL" --lr 2e-3 --evals $E5
run flow_d8           --model '{"depth":8}' --diff "$FL" --lr 2e-3 --evals $E5
run flow_p2           --model '{"patch_size":2}' --diff "$FL" --lr 2e-3 --evals $E5
run flow_b16_lr2e-3   --diff "$FL" --lr 2e-3 --batch 16 --evals 1000,2000,3000,4000,6000
run flow_b64_lr2e-3   --diff "$FL" --lr 2e-3 --batch 64 --evals 250,500,750,1000,1500
run flow_lr2e-3_nowarm --diff "$FL" --lr 2e-3 --warmup 1 --evals $E5
run flow_w256d4p4_h4  --preset tiny --model '{"hidden_size":256,"num_heads":4,"depth":4}' --diff "$FL" --lr 1e-3 --evals $E5
run b16_lr4e-3   --diff "$FL" --lr 4e-3 --batch 16 --evals 1000,2000,3000
run b16_lr3e-3   --diff "$FL" --lr 3e-3 --batch 16 --evals 1000,2000,3000
run b32_lr6e-3   --diff "$FL" --lr 6e-3 --evals 500,1000,1500
run b32_lr4e-3_drop2 --diff "$FL" --lr 4e-3 --drop 0.2 --evals 500,1000,1500
run b32_lr4e-3_heun10 --diff "$FL" --lr 4e-3 --sampler heun --steps 10 --evals 500,1000,1500
run b32_lr4e-3_eul50 --diff "$FL" --lr 4e-3 --steps 50 --evals 500,1000,1500
run w128d4_lr4e-3 --model '{"hidden_size":128,"num_heads":4,"depth":4}' --diff "$FL" --lr 4e-3 --evals 500,1000,1500
run d6_lr4e-3 --model '{"depth":6}' --diff "$FL" --lr 4e-3 --evals 500,1000,1500
run b32_lr4e-3_wd --diff "$FL" --lr 4e-3 --wd 0.01 --evals 500,1000,1500
run v_minsnr_lr4e-3 --diff '{"objective":"v","schedule":"cosine","weighting":"min_snr"}' --lr 4e-3 --evals 500,1000,1500
run eps_lin_lr4e-3 --diff '{"objective":"eps","schedule":"linear"}' --lr 4e-3 --evals 500,1000,1500
wait
cd $OUT && cat sweep_*.jsonl > all.jsonl; tail -n 2 log_*.txt > logs.txt; tar cf grids.tar grid_*.png; rm -f sweep_*.jsonl grid_*.png log_*.txt; ls
