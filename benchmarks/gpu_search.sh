#!/usr/bin/env bash
# GPU check of the search service, one script, about 5 minutes on an H100/H200:
# b453-quick (6-epoch trials on real CIFAR-10) with two workers sharing the GPU
# (--trials-per-gpu 2: per-trial memory reservations), then the engine at batch 1024.
#   bash benchmarks/gpu_search.sh DATA_DIR OUT_DIR   (DATA_DIR holds cifar10-jpeg.tar.gz)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-.carry}
out=${2:-/tmp/gpu-search}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m search.cli validate --study b453-quick
time python3 -m search.cli run --study b453-quick --data-dir "$data" \
    --storage "sqlite:///$out/gpu-study.db" --gpus 0 --trials-per-gpu 2
python3 -m search.cli best --study b453-quick --storage "sqlite:///$out/gpu-study.db"
python3 benchmarks/bench_engine.py --device cuda --arch ResNet26-B453 --data-dir "$data" \
    --epochs 2 --batch-sizes 1024 --ref-steps 60 --ref-warmup 10
