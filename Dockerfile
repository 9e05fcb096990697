# syntax=docker/dockerfile:1
# The optuna-search image: the worker (`optuna-search worker`) and optuna-dashboard.
# Built by docker-compose.yml; by hand: docker build -t optuna-search .
# PyPI's torch wheels for Linux x86_64 are CUDA builds that bring their own CUDA libraries:
# the host needs only the NVIDIA driver and the NVIDIA Container Toolkit. For an older driver,
# build with a matching wheel index, e.g.
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CUDA_DEVICE_ORDER=PCI_BUS_ID

# Dependencies first, from pyproject.toml alone, so that editing the sources does not
# reinstall torch.
WORKDIR /opt/optuna-search
ARG TORCH_INDEX_URL=""
COPY pyproject.toml README.md ./
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" "torch>=2.4" "torchvision>=0.19"; \
    fi \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself; its commit is recorded on every trial (the image holds no .git).
ARG GIT_COMMIT=""
ENV OPTUNA_SEARCH_GIT_COMMIT=$GIT_COMMIT
COPY model ./model
COPY search ./search
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# gpu-slot COMMAND [ARG...]: run COMMAND on a GPU of its own (used by the compose worker).
# A worker replica sees every GPU (a compose reservation of `count: 1` is GPU 0 in every
# replica), so each one claims a slot with flock on a file in /work/locks, a volume shared by
# the replicas of a host, exports CUDA_VISIBLE_DEVICES for it and execs COMMAND, which
# inherits the lock: the slot is held exactly as long as COMMAND runs. Replicas beyond the
# slots wait for one to free.
#   WORKER_GPUS      the GPUs to use, e.g. 0,1,3 (default: every GPU the container sees)
#   WORKERS_PER_GPU  replicas per GPU (default 1)
#   GPU_LOCK_DIR     the lock folder (default /work/locks); GPU_SLOT_POLL seconds between tries
# CUDA_VISIBLE_DEVICES already set: COMMAND runs as it is.
COPY --chmod=0755 <<'EOF' /usr/local/bin/gpu-slot
#!/bin/sh
set -eu
if [ "$#" -eq 0 ]; then
    echo "usage: gpu-slot COMMAND [ARG...]" >&2
    exit 2
fi
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    exec "$@"
fi
per_gpu=${WORKERS_PER_GPU:-1}
case "$per_gpu" in
    '' | *[!0-9]* | 0)
        echo "gpu-slot: WORKERS_PER_GPU must be a positive whole number, not '$per_gpu'" >&2
        exit 2
        ;;
esac
gpus=$(echo "${WORKER_GPUS:-}" | tr ',' ' ')
if [ -z "$gpus" ]; then
    n=$(python -c 'import torch; print(torch.cuda.device_count())')
    if [ "$n" -eq 0 ]; then
        echo "gpu-slot: no GPU visible in this container: check the NVIDIA driver and the" \
            "NVIDIA Container Toolkit on the host (docker run --rm --gpus all" \
            "ubuntu nvidia-smi)" >&2
        exit 1
    fi
    gpus=$(seq 0 $((n - 1)))
fi
lock_dir=${GPU_LOCK_DIR:-/work/locks}
mkdir -p "$lock_dir"
waiting=""
while :; do
    for slot in $(seq 1 "$per_gpu"); do
        for gpu in $gpus; do
            exec 9>"$lock_dir/gpu$gpu.$slot.lock"
            if flock -n 9; then
                export CUDA_VISIBLE_DEVICES="$gpu"
                echo "gpu-slot: GPU $gpu (slot $slot of $per_gpu per GPU)" >&2
                exec "$@"
            fi
            exec 9>&-
        done
    done
    if [ -z "$waiting" ]; then
        echo "gpu-slot: every slot is taken (GPUs" $gpus "x $per_gpu): waiting for one;" \
            "scale the workers down or raise WORKERS_PER_GPU" >&2
        waiting=yes
    fi
    sleep "${GPU_SLOT_POLL:-15}"
done
EOF

# A non-root user; the folders that compose mounts volumes on belong to it, so that new
# named volumes do too (bind mounts: make the host folders writable by APP_UID).
ARG APP_UID=1000
ARG APP_GID=1000
RUN groupadd --gid "$APP_GID" app \
    && useradd --uid "$APP_UID" --gid "$APP_GID" --create-home --shell /usr/sbin/nologin app \
    && mkdir -p /work/data /work/checkpoints /work/artifacts /work/locks \
    && chown -R app:app /work

# `--study NAME` looks in ./study_configs first: the study configs the CLI finds.
WORKDIR /work
COPY --chown=app:app study_configs ./study_configs
USER app

CMD ["optuna-search", "--help"]
