#!/usr/bin/env bash
# GPU check of the training engine, one script, under 8 minutes on an H100/H200:
# ResNet26-B453 on real CIFAR-10 (the JPEG tarball), the paper-style reference loop against
# the engine at batch 128, 512 and 1024 and compiled, with model-FLOP utilisation; then an
# out-of-memory provoked on purpose, and a run after it in the same process.
#   bash benchmarks/gpu_engine.sh DATA_DIR      (DATA_DIR holds cifar10-jpeg.tar.gz)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-.carry}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c 'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__)'
python3 benchmarks/bench_engine.py --device cuda --arch ResNet26-B453 --data-dir "$data" \
    --epochs 3 --batch-sizes 128,512,1024 --compile --ref-steps 150 --ref-warmup 20 --oom-check
