"""The docker compose deployment: compose file, Dockerfile, .dockerignore, .env.example.

No Docker engine is needed: ``docker-compose config`` (compose v1.29, Debian's
``docker-compose`` package) validates and resolves the file offline, and the properties a user
relies on are checked on its output. ``gpu-slot``, the script in the Dockerfile that gives
each worker replica a GPU of its own, runs here under ``sh`` with ``flock``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
PASSWORD = "test-only-0123abcd"


# ---------------------------------------------------------------------------------------------
# docker-compose config


@pytest.fixture(scope="module")
def compose_bin() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        reason = "docker-compose not installed (apt-get install -y docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must install it")
        pytest.skip(reason)
    return found


def _compose(
    compose_bin: str, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """``docker-compose ARGS`` in a minimal environment: only PATH, HOME and ``env``, and an
    empty env file, so that neither the caller's variables nor a user's .env count."""
    empty = tmp_path / "empty.env"
    empty.touch()
    full_env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    full_env.update(env)
    return subprocess.run(
        [compose_bin, "--env-file", str(empty), "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(compose_bin: str, tmp_path: Path, **env: str) -> dict[str, Any]:
    result = _compose(compose_bin, tmp_path, "config", POSTGRES_PASSWORD=PASSWORD, **env)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def config(compose_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The resolved compose file with every default."""
    return _config(compose_bin, tmp_path_factory.mktemp("compose"))


def _service(config: dict[str, Any], name: str) -> dict[str, Any]:
    service = config["services"][name]
    assert isinstance(service, dict)
    return service


def _ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host address, host port, container port) of each published port, short or long form."""
    out = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            out.append((str(p.get("host_ip", "")), str(p["published"]), str(p["target"])))
        else:  # [HOST_IP:]PUBLISHED:TARGET[/PROTOCOL]
            parts = str(p).split("/")[0].split(":")
            if len(parts) == 2:
                parts.insert(0, "")
            out.append((parts[0], parts[1], parts[2]))
    return out


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a volume name or a host path), short or long form."""
    out = {}
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            out[str(v["target"])] = str(v["source"])
        else:
            source, target = str(v).split(":")[:2]
            out[target] = source
    return out


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return " ".join(command) if isinstance(command, list) else str(command)


def test_compose_file_is_valid(compose_bin: str, tmp_path: Path) -> None:
    result = _compose(compose_bin, tmp_path, "config", "-q", POSTGRES_PASSWORD=PASSWORD)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_password_is_refused_with_the_fix(
    compose_bin: str, tmp_path: Path, value: str | None
) -> None:
    env = {} if value is None else {"POSTGRES_PASSWORD": value}
    result = _compose(compose_bin, tmp_path, "config", "-q", **env)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr
    assert "openssl rand -hex 24" in result.stderr


def test_postgres_is_private_persistent_and_health_checked(config: dict[str, Any]) -> None:
    pg = _service(config, "postgres")
    assert re.fullmatch(r"postgres:\d+", pg["image"]), "pin a major version"
    assert _ports(pg) == [("127.0.0.1", "5432", "5432")]
    source = _mounts(pg)["/var/lib/postgresql/data"]
    assert source in config["volumes"], "its data lives in a named volume"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"] == PASSWORD


def test_postgres_bind_and_host_folders_are_configurable(compose_bin: str, tmp_path: Path) -> None:
    config = _config(
        compose_bin,
        tmp_path,
        POSTGRES_BIND="0.0.0.0",
        POSTGRES_PORT="15432",
        DASHBOARD_PORT="18080",
        DATA_DIR="/srv/cifar10",
        ARTIFACTS_DIR="/srv/artifacts",
        STUDY="pareto-wide",
    )
    assert _ports(_service(config, "postgres")) == [("0.0.0.0", "15432", "5432")]
    assert _ports(_service(config, "dashboard")) == [("127.0.0.1", "18080", "8080")]
    worker = _service(config, "worker")
    assert _mounts(worker)["/work/data"] == "/srv/cifar10"
    assert _mounts(worker)["/work/artifacts"] == "/srv/artifacts"
    assert _mounts(_service(config, "dashboard"))["/work/artifacts"] == "/srv/artifacts"
    assert "optuna-search worker --study pareto-wide" in _command(worker)


def _storage(service: dict[str, Any]) -> str:
    url = service["environment"]["OPTUNA_SEARCH_STORAGE"]
    assert isinstance(url, str)
    return url


def test_workers_use_the_compose_postgres(config: dict[str, Any]) -> None:
    worker = _service(config, "worker")
    url = urlsplit(_storage(worker))
    assert url.scheme == "postgresql"
    assert (url.username, url.password, url.hostname, url.port, url.path) == (
        "optuna",
        PASSWORD,
        "postgres",
        5432,
        "/optuna",
    )
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert worker["restart"] == "on-failure"


def test_workers_run_the_study_one_gpu_each(config: dict[str, Any]) -> None:
    worker = _service(config, "worker")
    # gpu-slot picks a GPU per replica among all of them: a `count: 1` reservation would be
    # GPU 0 in every replica of `--scale worker=N`.
    assert worker["command"] == [
        "gpu-slot",
        "optuna-search",
        "worker",
        "--study",
        "b453-space",
        "--trials-per-gpu",
        "1",
    ]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["count"] == "all"
    assert worker["environment"]["WORKERS_PER_GPU"] == "1"
    # Scalable: nothing that two replicas cannot both have.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_workers_share_data_checkpoints_artifacts_and_gpu_locks(config: dict[str, Any]) -> None:
    mounts = _mounts(_service(config, "worker"))
    for target in ("/work/data", "/work/checkpoints", "/work/artifacts", "/work/locks"):
        assert mounts[target] in config["volumes"], target


def test_dashboard_serves_the_same_database_and_artifacts(config: dict[str, Any]) -> None:
    dashboard = _service(config, "dashboard")
    worker = _service(config, "worker")
    command = _command(dashboard)
    assert re.search(
        r"exec optuna-dashboard \"\$+OPTUNA_SEARCH_STORAGE\" --artifact-dir /work/artifacts "
        r"--host 0\.0\.0\.0 --port 8080",
        command,
    ), command
    # The schema first: optuna-dashboard fails on a database no worker has written to yet.
    assert "RDBStorage(" in command.split("optuna-dashboard")[0]
    ours, theirs = urlsplit(_storage(dashboard)), urlsplit(_storage(worker))
    assert ours.scheme == "postgresql+psycopg", "SQLAlchemy's bare postgresql:// is psycopg2"
    assert ours._replace(scheme="postgresql") == theirs
    assert _mounts(dashboard)["/work/artifacts"] == _mounts(worker)["/work/artifacts"]
    assert _ports(dashboard) == [("127.0.0.1", "8080", "8080")]
    assert dashboard["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert dashboard["image"] == worker["image"]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_no_password_is_written_in_the_compose_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    required = "${POSTGRES_PASSWORD:?"
    assert raw["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(required)
    urls = [s for s in _strings(raw) if "://" in s and "@" in s]
    assert len(urls) == 2
    for url in urls:
        assert f":{required}" in url and "}@postgres:5432/" in url, url


def test_env_example_documents_every_variable_without_a_secret() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE_FILE.read_text()))
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert used == set(values)
    assert values["POSTGRES_PASSWORD"] == "", "the user must choose one: compose refuses empty"
    assert values["POSTGRES_BIND"] == "127.0.0.1"
    assert "DOCKER-USER" in ENV_EXAMPLE.read_text(), "the firewall caveat"


# ---------------------------------------------------------------------------------------------
# Dockerfile and .dockerignore


def _dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context: the last pattern matching the
    path or one of its parent folders decides; ``!`` re-includes; ``**`` spans folders."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            else:
                c = pattern[i]
                out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
                i += 1
        return re.compile(out)

    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        rx = regex(pattern.lstrip("!").strip("/"))
        if any(rx.fullmatch(c) for c in candidates):
            excluded = not negated
    return excluded


def _dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        ".carry/cifar10-jpeg.tar.gz",
        "data/cifar-10-batches-py/data_batch_1",
        "data/cifar10-uint8.pt",
        "checkpoints/trial-3.pt",
        "artifacts/x.png",
        "optuna-search.db",
        "optuna-search.db-wal",
        "study_configs/old.db",
        "search/__pycache__/cli.cpython-311.pyc",
        "optuna_search.egg-info/PKG-INFO",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert _dockerignore_excludes(path, _dockerignore())


def _copied_sources() -> list[str]:
    """The build-context paths the Dockerfile copies (heredocs aside)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("<<") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_dockerfile_copies_what_the_image_needs_and_the_context_has_it() -> None:
    sources = _copied_sources()
    assert {"pyproject.toml", "README.md", "model", "search", "study_configs"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _dockerignore_excludes(source, _dockerignore()), source
    for kept in ("model/network.py", "search/cli.py", "study_configs/b453-space.yaml"):
        assert not _dockerignore_excludes(kept, _dockerignore()), kept


def test_dockerfile_installs_the_project_for_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert "tomllib" in text and "pip install -r /tmp/requirements.txt" in text, "dependencies"
    assert re.search(r"^RUN pip install --no-deps \. ", text, re.M), "the project"
    assert "PYTHONUNBUFFERED=1" in text
    # --study NAME is looked up in ./study_configs: the working directory must hold them.
    workdirs = re.findall(r"^WORKDIR (\S+)", text, re.M)
    assert workdirs[-1] == "/work"
    assert re.search(r"^COPY --chown=app:app study_configs \./study_configs$", text, re.M)
    assert re.findall(r"^USER (\S+)", text, re.M) == ["app"]
    assert "mkdir -p /work/data /work/checkpoints /work/artifacts /work/locks" in text


# ---------------------------------------------------------------------------------------------
# gpu-slot


@pytest.fixture
def gpu_slot(tmp_path: Path) -> Path:
    if shutil.which("flock") is None or shutil.which("sh") is None:
        pytest.skip("gpu-slot needs sh and flock (util-linux)")
    match = re.search(
        r"^COPY --chmod=0755 <<'EOF' /usr/local/bin/gpu-slot\n(.*?)^EOF$",
        DOCKERFILE.read_text(),
        re.M | re.S,
    )
    assert match, "the gpu-slot heredoc in the Dockerfile"
    script = tmp_path / "gpu-slot"
    script.write_text(match.group(1))
    return script


class _Replicas:
    """Worker replicas as gpu-slot runs them: each writes its CUDA_VISIBLE_DEVICES, then
    sleeps (holding its slot) until killed."""

    def __init__(self, script: Path, tmp_path: Path, **env: str) -> None:
        self.script, self.tmp_path = script, tmp_path
        self.env = {
            "PATH": os.environ["PATH"],
            "GPU_LOCK_DIR": str(tmp_path / "locks"),
            "GPU_SLOT_POLL": "0.05",
            **env,
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        with (self.tmp_path / f"{name}.err").open("wb") as err:
            self.procs[name] = subprocess.Popen(
                [
                    "sh",
                    str(self.script),
                    "sh",
                    "-c",
                    'echo "$CUDA_VISIBLE_DEVICES" > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 60',
                    "sh",
                    str(self.tmp_path / f"{name}.gpu"),
                ],
                env=self.env,
                stderr=err,
            )

    def gpu(self, name: str, timeout: float = 10) -> str:
        path = self.tmp_path / f"{name}.gpu"
        deadline = time.monotonic() + timeout
        while not path.exists():
            assert time.monotonic() < deadline, self.stderr(name)
            time.sleep(0.01)
        return path.read_text().strip()

    def stderr(self, name: str) -> str:
        return (self.tmp_path / f"{name}.err").read_text()

    def has_gpu(self, name: str) -> bool:
        return (self.tmp_path / f"{name}.gpu").exists()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


@pytest.fixture
def replicas(gpu_slot: Path, tmp_path: Path) -> Iterator[_Replicas]:
    r = _Replicas(gpu_slot, tmp_path, WORKER_GPUS="0,1")
    try:
        yield r
    finally:
        r.stop_all()


def test_each_replica_gets_its_own_gpu_and_extra_ones_wait(replicas: _Replicas) -> None:
    replicas.start("a")
    first = replicas.gpu("a")
    replicas.start("b")
    assert {first, replicas.gpu("b")} == {"0", "1"}
    replicas.start("c")
    deadline = time.monotonic() + 10
    while "every slot is taken" not in replicas.stderr("c"):
        assert time.monotonic() < deadline, replicas.stderr("c")
        time.sleep(0.01)
    assert not replicas.has_gpu("c")
    replicas.stop("a")  # its lock goes with it
    assert replicas.gpu("c") == first


def test_workers_per_gpu_share_a_gpu(gpu_slot: Path, tmp_path: Path) -> None:
    r = _Replicas(gpu_slot, tmp_path, WORKER_GPUS="3", WORKERS_PER_GPU="2")
    try:
        r.start("a")
        r.start("b")
        assert (r.gpu("a"), r.gpu("b")) == ("3", "3")
        assert "slot 1 of 2" in r.stderr("a") + r.stderr("b")
        assert "slot 2 of 2" in r.stderr("a") + r.stderr("b")
    finally:
        r.stop_all()


def test_gpu_slot_rejects_a_bad_count_and_respects_a_pinned_gpu(
    gpu_slot: Path, tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"], "GPU_LOCK_DIR": str(tmp_path / "locks")}
    bad = subprocess.run(
        ["sh", str(gpu_slot), "true"],
        env={**env, "WORKERS_PER_GPU": "0"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert bad.returncode == 2
    assert "WORKERS_PER_GPU must be a positive whole number" in bad.stderr
    pinned = subprocess.run(
        ["sh", str(gpu_slot), "sh", "-c", 'echo "$CUDA_VISIBLE_DEVICES"'],
        env={**env, "CUDA_VISIBLE_DEVICES": "5"},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert (pinned.returncode, pinned.stdout.strip()) == (0, "5")
