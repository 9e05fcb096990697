"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd on this machine.

Everything lives in one temporary folder: the config, the state (so job ids start at 1), the
logs, the pid files, and a munged of its own (own key, own socket, named by ``AuthInfo``), so
that the cluster touches nothing of the machine's and a second one could run beside it. The
ports are free ones. Debian's Slurm 22.05 runs without systemd or cgroups and is idle within a
second or two; see /work/shared/notes/slurm-single-node.md for the settings that matter.

Starting it needs root (munged runs as the ``munge`` user, slurmd launches jobs) and the
packages ``slurmctld slurmd slurm-client munge``; without them the tests that use it are
skipped (failed under CI, whose ``.ci/run`` installs them), with the reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port

PACKAGES = "slurmctld slurmd slurm-client munge"
NODE_CPUS = 16
"""CPUs the node claims (``config_overrides``: more than the machine has), so that an array of
tasks with ``--cpus-per-task=4`` runs at once on a 2-core machine."""
GPU_STAND_INS = "/dev/tty[0-3]"
"""Four existing device files for ``gres/gpu``: each task then gets ``--gres=gpu:1`` and a
``CUDA_VISIBLE_DEVICES`` of its own (regular files schedule but set no CUDA_VISIBLE_DEVICES)."""

SLURM_CONF = """\
ClusterName=optuna-search-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ReturnToService=2
KillWait=5
MinJobAge=600
MailProg=/bin/true
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class Unavailable(Exception):
    """Slurm cannot run here; the message says why."""


@dataclass
class SlurmCluster:
    """A running cluster: ``env`` is what ``sbatch``, ``squeue``, ``scancel`` and ``scontrol``
    need (``SLURM_CONF``, and none of the caller's ``SLURM_*``/``SBATCH_*`` variables)."""

    folder: Path
    env: dict[str, str]

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A Slurm command; its stderr in the error when it fails."""
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
        return done

    def sbatch(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
        """Submit; the job id (of the array, for an array)."""
        done = subprocess.run(
            ["sbatch", "--parsable", *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"sbatch exited {done.returncode}: {done.stderr}")
        return done.stdout.strip().split(";")[0]

    def queued(self, job: str) -> list[str]:
        """``JOBID_TASK STATE`` of the job's tasks still pending or running."""
        out = self.run("squeue", "-h", "-r", "-j", job, "-o", "%i %T").stdout
        return out.splitlines()

    def wait_gone(self, job: str, timeout: float) -> None:
        """Until none of the job's tasks is pending or running (or the time is up)."""
        deadline = time.monotonic() + timeout
        while self.queued(job):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job} still queued after {timeout:.0f} s: {self.queued(job)}"
                )
            time.sleep(0.5)

    def jobs(self, job: str) -> list[dict[str, str]]:
        """``scontrol show job``, one dict per task (kept for ``MinJobAge`` after the end)."""
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines()]

    def log_tail(self, lines: int = 15) -> str:
        """The daemons' last log lines, for a failure message."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "munge/munged.log"):
            path = self.folder / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)


def _find(tool: str) -> str:
    """A Slurm or munge program (daemons live in /usr/sbin, which a user's PATH may lack)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin"
    found = shutil.which(tool, path=path)
    if found is None:
        raise Unavailable(f"Slurm is not installed ({tool} not found): apt-get install {PACKAGES}")
    return found


def _start(folder: Path) -> SlurmCluster:
    """Start munged, slurmctld and slurmd in ``folder``; the cluster once its node is idle."""
    tools = {t: _find(t) for t in ("munged", "mungekey", "slurmctld", "slurmd", "sbatch")}
    if os.geteuid() != 0:
        raise Unavailable("starting Slurm needs root (munged runs as munge, slurmd as root)")
    try:
        munge_user = pwd.getpwnam("munge")
    except KeyError:
        raise Unavailable("no munge user: apt-get install munge") from None
    for device in ("/dev/tty0", "/dev/tty3"):
        if not Path(device).exists():
            raise Unavailable(f"{device} is missing: it stands in for a GPU (gres.conf)")

    # munged checks that every folder above its socket is reachable by all, and its own is
    # owned by munge: the folder is world-readable, not the pytest tmp (0700).
    folder.chmod(0o755)
    munge = folder / "munge"
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir()
    os.chown(munge, munge_user.pw_uid, munge_user.pw_gid)
    conf = folder / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            folder=folder, ctld_port=free_port(), slurmd_port=free_port(), cpus=NODE_CPUS
        )
    )
    (folder / "gres.conf").write_text(f"NodeName=localhost Name=gpu File={GPU_STAND_INS}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    env["SLURM_CONF"] = str(conf)
    cluster = SlurmCluster(folder=folder, env=env)

    as_munge = ["runuser", "-u", "munge", "--"]
    steps = [
        [*as_munge, tools["mungekey"], "--create", f"--keyfile={munge}/munge.key"],
        [
            *as_munge,
            tools["munged"],
            f"--socket={munge}/munge.socket",
            f"--key-file={munge}/munge.key",
            f"--pid-file={munge}/munged.pid",
            f"--seed-file={munge}/munged.seed",
            f"--log-file={munge}/munged.log",
        ],
        # Both daemonise once they are listening, and write their pid files.
        [tools["slurmctld"], "-f", str(conf)],
        [tools["slurmd"], "-f", str(conf), "-N", "localhost"],
    ]
    for command in steps:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            name = Path(command[4] if command[0] == "runuser" else command[0]).name
            raise Unavailable(
                f"Slurm could not be started: {name} exited {done.returncode}: "
                f"{done.stderr.strip()}\n{cluster.log_tail()}"
            )
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["sinfo", "-h", "-o", "%T %E"], env=env, capture_output=True, text=True, timeout=30
        )
        state = done.stdout.strip() or done.stderr.strip()
        if state.startswith("idle"):
            return cluster
        time.sleep(0.2)
    raise Unavailable(
        f"Slurm could not be started: its node is not idle after 30 s ({state})\n"
        + cluster.log_tail()
    )


def _stop(cluster: SlurmCluster) -> None:
    """Cancel every job, then stop the daemons by their pid files."""
    with contextlib.suppress(Exception):
        jobs = cluster.run("squeue", "-h", "-o", "%A").stdout.split()
        if jobs:
            cluster.run("scancel", *jobs)
            deadline = time.monotonic() + 30
            while cluster.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
    pids = []
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/munged.pid"):
        with contextlib.suppress(FileNotFoundError, ValueError):
            pids.append(int((cluster.folder / pid_file).read_text().split()[0]))
    _terminate(pids)


def _terminate(pids: list[int], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL to what is left after ``timeout``; returns once all are gone.
    (The daemons are not our children: poll with signal 0.)"""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids:
        for pid in list(pids):
            if not _alive(pid):
                pids.remove(pid)
            elif time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """Running (a zombie is not: an init that reaps nothing would keep it forever)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A fresh cluster in a temporary folder, stopped and removed afterwards; raises
    :class:`Unavailable` where Slurm cannot run."""
    folder = Path(tempfile.mkdtemp(prefix="optuna-search-slurm-", dir="/tmp"))
    cluster: SlurmCluster | None = None
    try:
        cluster = _start(folder)
        yield cluster
    finally:
        _stop(cluster or SlurmCluster(folder=folder, env={}))
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """The test session's Slurm cluster; skips (fails under CI) where Slurm cannot run."""
    try:
        with slurm_cluster() as cluster:
            yield cluster
    except Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; CI must install and start Slurm ({PACKAGES})")
        pytest.skip(str(e))
