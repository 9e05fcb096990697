"""A worker's name: from the scheduler when there is one, else host and process."""

from __future__ import annotations

import os
import platform

import pytest

from search.identity import worker_name


@pytest.mark.parametrize(
    ("env", "index", "device", "expected"),
    [
        ({"SLURM_ARRAY_JOB_ID": "81", "SLURM_ARRAY_TASK_ID": "5"}, None, "cpu", "slurm-81_5"),
        ({"SLURM_JOB_ID": "90"}, None, "cpu", "slurm-90"),
        ({"SLURM_JOB_ID": "90", "SLURM_PROCID": "2"}, None, "cpu", "slurm-90.2"),
        ({"SLURM_JOB_ID": "90"}, 1, "cuda:0", "slurm-90/w1/cuda:0"),
        ({"JOB_COMPLETION_INDEX": "3", "HOSTNAME": "w-3"}, None, "cpu", "w-3"),
        ({"JOB_COMPLETION_INDEX": "3", "HOSTNAME": "w-3-x7k2p"}, None, "cpu", "w-3-x7k2p"),
        ({"JOB_COMPLETION_INDEX": "3", "HOSTNAME": "box"}, None, "cpu", "box/i3"),
        ({"CUDA_VISIBLE_DEVICES": "2"}, 4, "cuda", f"{platform.node()}/w4/gpu2"),
        ({}, 0, "cpu", f"{platform.node()}/w0"),
    ],
)
def test_names(env: dict[str, str], index: int | None, device: str, expected: str) -> None:
    assert worker_name(index=index, device=device, env=env) == expected


def test_a_lone_worker_is_named_by_host_and_process() -> None:
    assert worker_name(index=None, device="cpu", env={}) == f"{platform.node()}/pid{os.getpid()}"
