#!/usr/bin/env bash
# Every check that needs a CUDA GPU, in one run sized for a short lease (default 9 minutes in all):
#   - flow trainings in the background: StreamFlow from scratch, CompactFlowNet fine-tuned from the shipped weights
#     (time-based one-cycle schedules, synthetic batches rendered by CPU workers);
#   - the CUDA tests (gsplat parity with the torch backend, GFlow on CUDA), which also compile gsplat;
#   - the rasteriser benchmark on CUDA (docs/bench/render.md format);
#   - GFlow on DAVIS blackswan: fast preset, then the paper preset with the time that is left.
# Everything lands in OUTDIR/results.tgz (+ OUTDIR/summary.log). Data: $VISION3D_DATA (photos/, davis2016_480p/).
# Wheels missing on the machine (gsplat, kornia, kornia_rs) may sit in .whl/.
#
#   bash scripts/gpu_checks.sh OUTDIR [BUDGET_SECONDS]
set -u
OUTDIR=${1:?usage: gpu_checks.sh OUTDIR [BUDGET_SECONDS]}
BUDGET=${2:-540}
DEVICE=${DEVICE:-cuda}           # DEVICE=cpu W_SF=1 W_CF=1 SIZE="128 96": a dry run of the script on a laptop
W_SF=${W_SF:-5} W_CF=${W_CF:-4}
read -r TW TH <<< "${SIZE:-320 256}"
RES=$OUTDIR/res
mkdir -p "$RES"
source "$(dirname "$0")/gpu_env.sh"
export OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$RES/gpu.txt"
python3 -c "import torch, gsplat, kornia; print('torch', torch.__version__, 'gsplat', gsplat.__version__, 'kornia', kornia.__version__, 'cuda', torch.cuda.is_available())"

# StreamFlow (the one without a checkpoint) trains the longest; CompactFlowNet starts once the timed benchmark is
# done. Both end 100 s before the budget (final save + the tar).
train_min() { python3 -c "print(round(max(($BUDGET - 100 - $(elapsed)) / 60, 0.5), 1))"; }
M=$(train_min); say "streamflow training for $M min"
python3 scripts/train_flow.py --model streamflow --device "$DEVICE" --steps 0 --minutes "$M" --batch 8 \
  --width "$TW" --height "$TH" --lr 2.5e-4 --workers "$W_SF" --threads 2 --val-every 1000000000 \
  --run /tmp/train/streamflow --out "$RES/streamflow" > "$RES/train_streamflow.log" 2>&1 &
P_SF=$!

say "CUDA tests (compiles gsplat on first use)"
timeout 240 python3 -m pytest -q -m cuda -p no:cacheprovider tests/render/test_gsplat_parity.py tests/scene4d/test_gflow.py > "$RES/pytest_cuda.log" 2>&1
say "pytest rc=$? $(tail -1 "$RES/pytest_cuda.log")"

say "render benchmark on CUDA (the StreamFlow training shares the GPU)"
timeout 90 python3 scripts/bench_render.py --quick --out "$RES/render_cuda.md" > "$RES/bench_render.log" 2>&1
say "bench_render rc=$?"

M=$(train_min); say "compactflownet fine-tuning for $M min"
python3 scripts/train_flow.py --model compactflownet --device "$DEVICE" --steps 0 --minutes "$M" --batch 16 \
  --width "$TW" --height "$TH" --lr 2e-4 --workers "$W_CF" --threads 2 --val-every 1000000000 \
  --init assets/checkpoints/compactflownet/compactflownet.safetensors \
  --run /tmp/train/compactflownet --out "$RES/compactflownet" > "$RES/train_compactflownet.log" 2>&1 &
P_CF=$!

say "GFlow fast preset, blackswan"
timeout 120 python3 scripts/gpu_scene4d.py --seq "$VISION3D_DATA/davis2016_480p" --preset fast \
  --out /tmp/gpu_fast --result "$RES/gflow_fast.json" > "$RES/gflow_fast.log" 2>&1
say "gflow fast rc=$? $(tail -1 "$RES/gflow_fast.log" | cut -c1-400)"

LEFT=$(( BUDGET - 30 - $(elapsed) ))
if [ "$LEFT" -gt 30 ]; then
  say "GFlow paper preset, blackswan, $LEFT s"
  timeout "$LEFT" python3 scripts/gpu_scene4d.py --seq "$VISION3D_DATA/davis2016_480p" --preset paper \
    --out /tmp/gpu_paper --result "$RES/gflow_paper.json" > "$RES/gflow_paper.log" 2>&1
  say "gflow paper rc=$? $(tail -1 "$RES/gflow_paper.log" | cut -c1-400)"
fi

wait $P_SF; say "streamflow training rc=$? $(tail -1 "$RES/train_streamflow.log")"
wait $P_CF; say "compactflownet training rc=$? $(tail -1 "$RES/train_compactflownet.log")"
tar czf "$OUTDIR/results.tgz" -C "$OUTDIR" res
say "done"
