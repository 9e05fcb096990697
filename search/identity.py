"""A worker's name: unique across a fleet, and readable in the report's timeline.

From the scheduler when there is one: a Slurm array task (``slurm-JOB_TASK``), a Slurm job
(``slurm-JOB``, with the task rank when a job runs several), a Kubernetes Indexed Job's pod
(its name, which holds the job and the completion index); else the host and the process
(``host/pid4711``). A worker started by a launcher adds its index (``/w3``), and one bound to
a GPU the GPU (``/gpu1``).

Example:
    >>> worker_name(index=2, device="cuda", env={"SLURM_ARRAY_JOB_ID": "81",
    ...     "SLURM_ARRAY_TASK_ID": "5", "CUDA_VISIBLE_DEVICES": "1"})
    'slurm-81_5/w2/gpu1'
    >>> worker_name(index=None, device="cpu", env={"JOB_COMPLETION_INDEX": "3",
    ...     "HOSTNAME": "optuna-search-workers-3"})
    'optuna-search-workers-3'
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Mapping


def scheduler_name(env: Mapping[str, str]) -> str | None:
    """The name the scheduler gives this process's task, or None outside a scheduler."""
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm-{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        rank = env.get("SLURM_PROCID", "0")
        return f"slurm-{env['SLURM_JOB_ID']}" + (f".{rank}" if rank != "0" else "")
    if env.get("JOB_COMPLETION_INDEX") is not None:
        pod = env.get("HOSTNAME") or platform.node()
        index = env["JOB_COMPLETION_INDEX"]
        # An Indexed Job's pod is named JOB-INDEX (hostname) or JOB-INDEX-SUFFIX (pod name).
        return pod if re.search(rf"-{re.escape(index)}(-|$)", pod) else f"{pod}/i{index}"
    return None


def worker_name(*, index: int | None, device: str, env: Mapping[str, str] | None = None) -> str:
    """This worker's name (see the module's docstring); ``index`` is its place among the
    workers a launcher started, None for a worker started on its own."""
    env = os.environ if env is None else env
    name = scheduler_name(env)
    if name is None:
        name = platform.node() + (f"/pid{os.getpid()}" if index is None else "")
    if index is not None:
        name += f"/w{index}"
    if device.startswith("cuda"):
        # The launcher and Slurm set CUDA_VISIBLE_DEVICES; Kubernetes' device plugin the
        # NVIDIA variable, often a GPU's UUID (shortened: the name stays readable).
        gpu = env.get("CUDA_VISIBLE_DEVICES") or env.get("NVIDIA_VISIBLE_DEVICES")
        name += f"/gpu{gpu[:12]}" if gpu else f"/{device}"
    return name
