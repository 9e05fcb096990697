#!/usr/bin/env bash
# A GPU proof in one script, under 9 minutes on one H100/H200: what a search finds, retrained
# and tested, against the paper's model, with the engine's speed beside it.
#   bash benchmarks/gpu_proof.sh DATA_DIR OUT_DIR          (GPU; DATA_DIR: the CIFAR-10 JPEG
#                                                           .tar.gz, or a folder holding it or
#                                                           its train/ and test/ folders)
#   bash benchmarks/gpu_proof.sh --tiny DATA_DIR OUT_DIR   (CPU: every phase, in minutes)
# Phases, each under its own time limit (stopped with SIGTERM, then SIGKILL 20 s later; the
# search records and re-queues a trial it stops, so the study stays consistent):
#   0. data       the images read once (converted and cached beside them, or in OUT_DIR/data)
#   1. engine     benchmarks/bench_engine.py: the paper-style loop against the engine
#   2. search     optuna-search run --study gpu-proof, trials per GPU from the memory estimate
#   3. retrain    optuna-search retrain of the best trial, epochs from what time is left
#   4. reference  optuna-search train of the paper's ResNet26-B453, paper recipe, same epochs
#   5. report     optuna-search report, then OUT_DIR/summary.json and the markdown table
# OUT_DIR gets the study (proof.db), report.html, summary.json, table.md and a log per phase.
set -euo pipefail

tiny=false
if [[ ${1:-} == --tiny ]]; then
    tiny=true
    shift
fi
if [[ $# -ne 2 ]]; then
    echo "usage: bash benchmarks/gpu_proof.sh [--tiny] DATA_DIR OUT_DIR" >&2
    exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
data=$(realpath -e "$1")
mkdir -p "$2"
out=$(realpath "$2")
if [[ -e $out/proof.db ]]; then
    echo "gpu_proof.sh: $out already holds a proof (proof.db): give a new OUT_DIR" >&2
    exit 2
fi
if [[ -f $data ]]; then # the tarball itself: --data-dir takes the folder holding it
    mkdir -p "$out/data"
    ln -sf "$data" "$out/data/$(basename "$data")"
    data=$out/data
fi
cd "$out" # the search's checkpoints/ and artifacts/ go here too
export PYTHONPATH=$repo${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
storage=sqlite:///$out/proof.db
proof=(python3 "$repo/benchmarks/gpu_proof.py")
cli=(python3 -m search.cli)

# Settings: time limits in seconds (total: the whole script's target, leaving the 9 minutes'
# rest for the stop grace), the engine's runs, the reference architecture.
if $tiny; then
    study=gpu-proof-tiny device=cpu
    total=270 data_limit=60 engine_limit=45 search_limit=60 report_limit=40 startup=12
    max_epochs=3
    arch=(--blocks "4,5,3" --channels "8,16,32" --strides "1,2,4" --stem-channels 8)
    engine=(--epochs 2 --batch-sizes "128,64" --ref-steps 8 --ref-warmup 2)
else
    study=gpu-proof device=cuda
    total=510 data_limit=60 engine_limit=90 search_limit=210 report_limit=25 startup=30
    max_epochs=200
    arch=(--arch ResNet26-B453)
    engine=(--epochs 3 --batch-sizes "128,1024,512" --compile --ref-steps 150 --ref-warmup 20)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
# The study's data split (validation size, subset), for the engine and the reference too.
flags=$("${proof[@]}" data-flags "$study")
read -ra data_flags <<<"$flags"
: >"$out/phases.tsv"

# phase NAME LIMIT COMMAND...: COMMAND under a hard limit of LIMIT seconds, its output also in
# OUT_DIR/NAME.log; NAME's seconds and status (ok, stopped, failed) go to phases.tsv. A limit
# under 30 s is raised to 30 s.
failed=0
phase() {
    local name=$1 limit=$(($2 > 30 ? $2 : 30)) start=$SECONDS rc=0 status=ok
    shift 2
    echo "== $name (limit ${limit} s, at ${SECONDS} s)"
    timeout --foreground --signal=TERM --kill-after=20 "$limit" "$@" 2>&1 \
        | tee "$out/$name.log" || rc=$?
    case $rc in
        0) ;;
        124 | 137) status="stopped at its limit" ;;
        *) status="failed (exit $rc)" failed=1 ;;
    esac
    printf '%s\t%s\t%s\n' "$name" "$((SECONDS - start))" "$status" >>"$out/phases.tsv"
}

# 0. The data: the first load converts the images and caches them; later phases read the cache.
phase data "$data_limit" "${proof[@]}" data "$study" --data-dir "$data"
if ((failed)); then
    echo "gpu_proof.sh: no data in $1 (see $out/data.log)" >&2
    exit 1
fi

# 1. The engine against the paper-style loop, at the search's batch sizes and the paper's.
phase engine "$engine_limit" python3 "$repo/benchmarks/bench_engine.py" --device "$device" \
    "${arch[@]}" "${engine[@]}" --data-dir "$data" "${data_flags[@]}" \
    --budget $((engine_limit - 25)) --json "$out/engine.json"

# 2. The search, on the images of DATA_DIR; it starts no trial after 2/3 of its limit.
flags=$("${proof[@]}" workers "$study" --device "$device" --out "$out")
read -ra workers <<<"$flags"
phase search "$search_limit" "${cli[@]}" run --study "$study" --storage "$storage" \
    --data-dir "$data" "${workers[@]}" --timeout $((search_limit * 2 / 3))

# 3. and 4. Retrain and reference share what is left: as many epochs as both can run.
plan=$("${proof[@]}" final-plan "$out" --study "$study" \
    --seconds $((total - SECONDS - report_limit)) --startup "$startup" --max-epochs "$max_epochs")
read -r epochs retrain_limit <<<"$plan"
if ((retrain_limit > 0)); then
    phase retrain "$retrain_limit" "${cli[@]}" retrain --study "$study" --storage "$storage" \
        --data-dir "$data" --device "$device" --epochs "$epochs"
fi
phase reference $((total - SECONDS - report_limit)) "${cli[@]}" train "${arch[@]}" \
    --data-dir "$data" "${data_flags[@]}" --device "$device" --epochs "$epochs" --json

# 5. The report, the summary and the table.
phase report "$report_limit" "${cli[@]}" report --study "$study" --storage "$storage" \
    -o "$out/report.html"
summary=(summary "$out" --study "$study" --elapsed "$SECONDS")
if $tiny; then
    summary+=(--tiny)
fi
"${proof[@]}" "${summary[@]}"
exit "$failed"
