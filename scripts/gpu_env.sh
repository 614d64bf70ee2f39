# Sourced by the GPU check scripts: wheels the machine lacks (from .whl/, installed once per machine — installing
# again would give gsplat's sources new times and recompile it), the environment gsplat's build and our runs need,
# and the `elapsed`/`say` helpers. Expects OUTDIR; logs to OUTDIR/summary.log.
T0=$(date +%s)
mkdir -p "$OUTDIR"
exec > >(tee -a "$OUTDIR/summary.log") 2>&1
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { echo "[$(elapsed)s] $*"; }

if compgen -G ".whl/*.whl" > /dev/null; then
  if [ ! -d /tmp/site/gsplat ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  fi
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD VISION3D_DATA=${VISION3D_DATA:-$PWD/device_data}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-16} PYTHONUNBUFFERED=1
