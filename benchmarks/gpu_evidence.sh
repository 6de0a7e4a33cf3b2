#!/usr/bin/env bash
# The GPU evidence run (benchmarks/gpu_evidence.py), prepared for a GPU machine without network.
#
# That machine's Python 3.12 has torch, transformers, accelerate, peft and timm, but not
# diffusers, TRL or bitsandbytes. Its wheels (and the pure-Python packages they need that it
# lacks) are fetched here, where PyPI is reachable, into .gpu-wheels/ (ignored by git):
#
#     PYTHON=.venv/bin/python benchmarks/gpu_evidence.sh download   # the project's Python
#
# It takes the versions this project is tested with: transformers and peft as installed here
# (the machine's own are older), diffusers 0.42.1, trl 1.16.0 with datasets 4.7.0 (pyarrow >= 21)
# and its dill / multiprocess, importlib_metadata, and bitsandbytes 0.50.2 cut down to its CPU
# and CUDA 13 libraries (43 MB -> 8 MB). About 30 MB in all.
#
# On the GPU machine (the device tool: carry [".gpu-wheels"], timeout_s 600):
#
#     benchmarks/gpu_evidence.sh run [gpu_evidence.py options, e.g. --budget 500]
#
# installs the wheels into /tmp/gpu-site (no index, no dependencies), prints the versions it
# sees, and runs the script with the JSON and a log written to $OUT (else runs/gpu-evidence/);
# the models and the study's data go to /tmp/gpu-evidence-work, never to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${GPU_WHEELS:-.gpu-wheels}  # where the wheels are (an environment variable may say)
PY=${PYTHON:-python3}

installed() {  # the version of a package in this Python
    "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"
}

download() {
    mkdir -p "$WHEELS"
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d "$WHEELS" \
        "transformers==$(installed transformers)" "peft==$(installed peft)" \
        diffusers==0.42.1 trl==1.16.0 datasets==4.7.0 dill==0.4.0 multiprocess==0.70.18 \
        importlib_metadata==10.2.0 bitsandbytes==0.50.2
    # bitsandbytes ships a library per CUDA version; the GPU machine runs CUDA 13.
    "$PY" - "$WHEELS"/bitsandbytes-*.whl <<'EOF'
import sys, zipfile
from pathlib import Path

path = Path(sys.argv[1])
keep = ("libbitsandbytes_cpu", "libbitsandbytes_cuda130", "libbitsandbytes_cuda132")
def wanted(name):
    return not name.endswith(".so") or Path(name).stem in keep
temporary = path.with_suffix(".tmp")
with zipfile.ZipFile(path) as old, zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as new:
    for item in old.infolist():
        if not wanted(item.filename):
            continue
        data = old.read(item)
        if item.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines()
            data = ("\n".join(l for l in lines if wanted(l.split(",")[0])) + "\n").encode()
        new.writestr(item, data)
temporary.replace(path)
EOF
    du -sh "$WHEELS"
    ls "$WHEELS"
}

run() {
    local out=${OUT:-runs/gpu-evidence}
    mkdir -p "$out"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu-site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/gpu-site:$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    "$PY" -c "import importlib.metadata as m; print({p: m.version(p) for p in
        ('torch', 'transformers', 'diffusers', 'trl', 'peft', 'accelerate', 'datasets', 'bitsandbytes')})" \
        || true  # the JSON records the versions too; a missing one must not stop the run
    "$PY" benchmarks/gpu_evidence.py --out "$out/gpu_evidence.json" \
        --work /tmp/gpu-evidence-work "$@" 2>&1 | tee "$out/gpu_evidence.log"
}

case "${1:-}" in
    download) download ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 download | run [gpu_evidence.py options]" >&2; exit 2 ;;
esac
