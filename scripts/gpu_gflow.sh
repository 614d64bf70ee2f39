#!/usr/bin/env bash
# GFlow's GPU checks in one run sized for a short lease (default 8.5 minutes in all):
#   - the per-iteration benchmark of the Gaussian step at 480p with a profiler table (also compiles gsplat;
#     BENCH=0: only the compile);
#   - the paper preset on DAVIS blackswan, all 50 frames at 854×480, scored (re-render PSNR/SSIM, J&F) and timed
#     per stage (SKIP: stages left out, default renders; FRAMES: the first N frames only; DEPTH_WORK: geometric
#     depth measured at this short side, 0 = full size); the per-frame rows come
#     back even when the time runs out;
#   - geometric depth's worker processes with one BLAS thread each against inherited pools (DEPTHBENCH=0: skip);
#   - the CUDA tests of the renderer and GFlow with the time that is left.
# Everything lands in OUTDIR (at most 10 files). Data: $VISION3D_DATA/davis2016_480p. Wheels missing on the machine
# (gsplat, kornia, kornia_rs) may sit in .whl/.
#
#   bash scripts/gpu_gflow.sh OUTDIR [BUDGET_SECONDS]
set -u
OUTDIR=${1:?usage: gpu_gflow.sh OUTDIR [BUDGET_SECONDS]}
BUDGET=${2:-510}
source "$(dirname "$0")/gpu_env.sh"
export OMP_NUM_THREADS=4
SEQ=$VISION3D_DATA/davis2016_480p
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, gsplat, os; print('torch', torch.__version__, 'gsplat', gsplat.__version__, 'cpus', os.cpu_count())"

if [ "${BENCH:-1}" = 1 ]; then
  say "GFlow step benchmark at 480p (compiles gsplat on first use)"
  timeout 200 python3 scripts/bench_gflow_step.py --frames "$SEQ/JPEGImages/blackswan" --profile \
    --out "$OUTDIR/gflow_step_cuda.md" > "$OUTDIR/bench.log" 2>&1
  say "bench rc=$? $(grep -A3 '^| per-render' "$OUTDIR/gflow_step_cuda.md" 2>/dev/null | tail -2 | tr '\n' ' ')"
else
  say "compiling gsplat"
  timeout 200 python3 -c "import torch, gsplat; from gsplat.cuda._backend import _C; print('gsplat ready', _C is not None)"
  say "compiled"
fi

if [ "${DEPTHBENCH:-1}" = 1 ]; then
  say "geometric depth workers: one BLAS thread each vs inherited (16 frames at 480p)"
  timeout 90 python3 scripts/bench_depth_workers.py --frames "$SEQ/JPEGImages/blackswan" --n 16 \
    --workers "$(nproc)" --threads "$(nproc)" --out "$OUTDIR/depth_workers.md" > "$OUTDIR/depth_workers.log" 2>&1
  say "depth workers rc=$? $(grep '^Ratio' "$OUTDIR/depth_workers.md" 2>/dev/null)"
fi

LEFT=$(( BUDGET - 45 - $(elapsed) ))
say "GFlow paper preset, blackswan, $LEFT s"
timeout "$LEFT" python3 scripts/gpu_scene4d.py --seq "$SEQ" --preset paper --out /tmp/gpu_paper \
  --skip "${SKIP:-renders}" ${FRAMES:+--max-frames $FRAMES} --depth-work "${DEPTH_WORK:-0}" \
  --result "$OUTDIR/gflow_paper.json"
say "gflow paper rc=$?"
ROWS=$(find /tmp/gpu_paper -name rows.json | head -1)
[ -n "$ROWS" ] && cp "$ROWS" "$OUTDIR/paper_rows.json"
cp /tmp/gpu_paper/manifest.json "$OUTDIR/paper_manifest.json" 2>/dev/null
[ -f /tmp/gpu_paper/scene/online.json ] && cp /tmp/gpu_paper/scene/online.json "$OUTDIR/paper_online.json"

LEFT=$(( BUDGET - 5 - $(elapsed) ))
if [ "$LEFT" -gt 20 ]; then
  say "CUDA tests, $LEFT s"
  timeout "$LEFT" python3 -m pytest -q -m cuda -p no:cacheprovider tests/scene4d/test_image_loss.py \
    tests/render/test_gsplat_parity.py tests/scene4d/test_gflow.py > "$OUTDIR/pytest_cuda.log" 2>&1
  say "pytest rc=$? $(tail -1 "$OUTDIR/pytest_cuda.log")"
fi
say "done"
