"""The Kubernetes deployment: the manifests, kustomization and README in deploy/kubernetes/.

No cluster is needed. Every manifest is checked against the API schemas of
:data:`KUBERNETES_VERSION` by ``kubernetes-validate --strict`` (a test dependency), which
rejects unknown and misspelt fields as the API server would. The rest is what no schema sees:
the workers are an Indexed Job with one GPU each that runs the shipped study config; every
Secret, ConfigMap, volume claim, Service and ``$(VAR)`` a pod names exists (or is one the
README has the user create); the storage URL points at the PostgreSQL Service; no password is
written down; the pods meet the "restricted" Pod Security Standard their namespace enforces;
and the README's commands name objects and files that exist. When kubectl is installed,
``kubectl kustomize`` builds the kustomization and its output is validated too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from search.config import load_config

ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
README = K8S_DIR / "README.md"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"

KUBERNETES_VERSION = "1.33.0"
"""The API the manifests are validated against: the oldest they need (backoffLimitPerIndex is
GA from 1.33); README.md says so."""

NAMESPACE = "optuna-search"
APP_IMAGE = "optuna-search"
"""The image name the manifests use for the Dockerfile's image; kustomization.yaml's
``images:`` replaces it with the user's registry and tag."""
SECRET = "optuna-postgres"
CONFIGMAP = "optuna-search-study"
USER_CREATED = {("Secret", SECRET), ("ConfigMap", CONFIGMAP)}
"""Objects the README has the user create, so that no secret and no copy of a study config is
committed."""

WORKLOADS = ("Pod", "Deployment", "StatefulSet", "Job", "DaemonSet", "ReplicaSet")
PSS_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


# ---------------------------------------------------------------------------------------------
# Loading


def _manifest_files() -> list[Path]:
    """Every Kubernetes manifest under deploy/kubernetes/ (kustomization.yaml is not one)."""
    return sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != KUSTOMIZATION.name)


def _documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert all(isinstance(d, dict) for d in docs), path
    return docs


RESOURCES = [(path, doc) for path in _manifest_files() for doc in _documents(path)]


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in RESOURCES if d["kind"] == kind}


def _one(kind: str, name: str) -> dict[str, Any]:
    found = _objects(kind)
    assert name in found, f"no {kind} {name} among the manifests: {sorted(found)}"
    return found[name]


def _pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod (metadata and spec) a workload runs."""
    return doc if doc["kind"] == "Pod" else doc["spec"]["template"]


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in RESOURCES:
        if doc["kind"] in WORKLOADS:
            yield f"{doc['kind']}/{doc['metadata']['name']}", _pod_template(doc)["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in _containers(pod) if c["name"] == name]
    return found


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _mounts(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Mount path -> (the volume's kind and source name, subPath) for one container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        volume = volumes[m["name"]]
        if "persistentVolumeClaim" in volume:
            source = "pvc:" + volume["persistentVolumeClaim"]["claimName"]
        elif "configMap" in volume:
            source = "configmap:" + volume["configMap"]["name"]
        else:
            source = volume["name"]
        out[m["mountPath"]] = (source, m.get("subPath", ""))
    return out


def _kustomization() -> dict[str, Any]:
    data = yaml.safe_load(KUSTOMIZATION.read_text())
    assert isinstance(data, dict)
    return data


def _dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match, f"ARG {name}= in the Dockerfile"
    return match.group(1)


def _workers() -> dict[str, Any]:
    return _one("Job", "optuna-search-workers")


def _worker_pod() -> dict[str, Any]:
    pod = _pod_template(_workers())["spec"]
    assert isinstance(pod, dict)
    return pod


def _dashboard_pod() -> dict[str, Any]:
    pod = _pod_template(_one("Deployment", "optuna-search-dashboard"))["spec"]
    assert isinstance(pod, dict)
    return pod


def _postgres_container() -> dict[str, Any]:
    pod = _pod_template(_one("StatefulSet", "optuna-postgres"))["spec"]
    return _container(pod, "postgres")


# ---------------------------------------------------------------------------------------------
# Schema validation


@pytest.fixture(scope="module")
def validator() -> list[str]:
    """The command line of kubernetes-validate, strict, against KUBERNETES_VERSION."""
    if importlib.util.find_spec("kubernetes_validate") is None:
        reason = "kubernetes-validate not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must install it")
        pytest.skip(reason)
    return [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION]


def _validate(validator: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*validator, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def _assert_every_resource_passed(
    result: subprocess.CompletedProcess[str], docs: list[dict[str, Any]]
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A kind or apiVersion it has no schema for is only a warning, with exit status 0.
    assert "WARN" not in output and "ERROR" not in output, output
    version = ".".join(KUBERNETES_VERSION.split(".")[:2])
    for doc in docs:
        resource = f"{doc['kind'].lower()}/{doc['metadata']['name']}"
        assert f"passed for resource {resource} against version {version}" in output, output


def test_there_is_a_manifest_for_each_part() -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in RESOURCES)
    assert kinds == [
        ("Deployment", "optuna-search-dashboard"),
        ("Job", "optuna-search-workers"),
        ("Namespace", NAMESPACE),
        ("PersistentVolumeClaim", "optuna-search-shared"),
        ("Pod", "optuna-search-shell"),
        ("Service", "optuna-postgres"),
        ("Service", "optuna-search-dashboard"),
        ("StatefulSet", "optuna-postgres"),
    ]


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S_DIR)))
def test_manifest_passes_kubernetes_validate_strict(validator: list[str], path: Path) -> None:
    _assert_every_resource_passed(_validate(validator, path), _documents(path))


def test_the_validator_rejects_a_misspelt_field(validator: list[str], tmp_path: Path) -> None:
    """The check above is not vacuous: a field the API does not know fails it."""
    job = _workers()
    bad = {**job, "spec": {**job["spec"], "completionsMode": "Indexed"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = _validate(validator, path)
    assert result.returncode != 0
    assert "'completionsMode' was unexpected" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# kustomization.yaml


def test_kustomization_applies_every_manifest_but_the_tools() -> None:
    k = _kustomization()
    assert (k["apiVersion"], k["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    resources = k["resources"]
    for entry in resources:
        assert (K8S_DIR / entry).is_file(), entry
    top_level = {p.name for p in _manifest_files() if p.parent == K8S_DIR}
    assert set(resources) == top_level
    # The one-off pod is applied by hand (README.md), not with every apply -k.
    assert all(p.parent == K8S_DIR or p.parent.name == "tools" for p in _manifest_files())
    assert k["namespace"] == NAMESPACE
    assert NAMESPACE in _objects("Namespace")
    # No generator: the study config comes from the ConfigMap the user creates.
    assert "configMapGenerator" not in k and "secretGenerator" not in k


def test_kustomization_replaces_the_app_image_everywhere() -> None:
    (entry,) = _kustomization()["images"]
    assert entry["name"] == APP_IMAGE
    assert entry["newName"].endswith("/optuna-search") and entry["newTag"]
    for where, pod in _pod_specs():
        for c in _containers(pod):
            if c["image"].split(":")[0] == APP_IMAGE:
                assert c["image"] == APP_IMAGE, f"{where}: the tag comes from newTag"
            else:  # a public image: pinned, so that an upgrade is a decision
                tag = c["image"].rpartition(":")[2]
                assert re.fullmatch(r"\d[\w.-]*", tag), f"{where}: {c['image']}"


@pytest.fixture(scope="module")
def built() -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/kubernetes``: what ``kubectl apply -k`` applies."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the kustomization is only checked by reading it")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


def test_kustomize_builds_namespaced_objects_with_the_users_image(
    built: list[dict[str, Any]], validator: list[str], tmp_path: Path
) -> None:
    (entry,) = _kustomization()["images"]
    image = f"{entry['newName']}:{entry['newTag']}"
    listed = [
        (d["kind"], d["metadata"]["name"])
        for name in _kustomization()["resources"]
        for d in _documents(K8S_DIR / name)
    ]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(listed)
    images = set()
    for doc in built:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
        if doc["kind"] in WORKLOADS:
            images |= {c["image"] for c in _containers(_pod_template(doc)["spec"])}
    assert images == {image, _postgres_container()["image"]}
    path = tmp_path / "built.yaml"
    path.write_text(yaml.safe_dump_all(built))
    _assert_every_resource_passed(_validate(validator, path), built)


# ---------------------------------------------------------------------------------------------
# The workers


def test_workers_are_an_indexed_job_with_one_gpu_each() -> None:
    spec = _workers()["spec"]
    assert spec["completionMode"] == "Indexed"
    # Equal, so that both can be patched together to scale (README.md).
    assert spec["completions"] == spec["parallelism"] >= 1
    pod = _worker_pod()
    (worker,) = pod["containers"]
    assert worker["name"] == "worker"
    resources = worker["resources"]
    assert int(resources["limits"]["nvidia.com/gpu"]) == 1
    assert int(resources.get("requests", {}).get("nvidia.com/gpu", 1)) == 1
    for init in pod.get("initContainers", []):
        assert "nvidia.com/gpu" not in init["resources"].get("limits", {}), init["name"]
    # Kubernetes gives each pod JOB_COMPLETION_INDEX and its HOSTNAME: the worker's name.
    assert not {"JOB_COMPLETION_INDEX", "HOSTNAME"} & set(_env(worker))


def test_workers_stop_cleanly_and_are_retried_per_index() -> None:
    spec = _workers()["spec"]
    pod = _worker_pod()
    assert pod["restartPolicy"] == "Never", "needed by backoffLimitPerIndex and podFailurePolicy"
    assert 1 <= spec["backoffLimitPerIndex"] <= 10
    # A worker stops within seconds of SIGTERM; this leaves room for storage retries.
    assert pod["terminationGracePeriodSeconds"] >= 60
    rules = spec["podFailurePolicy"]["rules"]
    ignored = [r for r in rules if r["action"] == "Ignore"]
    assert {"type": "DisruptionTarget", "status": "True"} in [
        c for r in ignored for c in r.get("onPodConditions", [])
    ], "an evicted or preempted worker must not use up its index's tries"
    sigterm = [r["onExitCodes"] for r in ignored if "onExitCodes" in r]
    assert sigterm == [{"containerName": "worker", "operator": "In", "values": [143]}]
    assert spec["podReplacementPolicy"] == "Failed"


def test_workers_run_the_shipped_study_config_from_the_configmap() -> None:
    pod = _worker_pod()
    worker = _container(pod, "worker")
    command = [*worker.get("command", []), *worker.get("args", [])]
    assert command[:3] == ["optuna-search", "worker", "--study"]
    (config_path,) = command[3:]
    mount, name = config_path.rsplit("/", 1)
    assert _mounts(pod, worker)[mount] == (f"configmap:{CONFIGMAP}", "")
    shipped = ROOT / "study_configs" / name
    assert shipped.is_file(), shipped
    assert f"kubectl create configmap {CONFIGMAP} --from-file=study_configs/{name}" in (
        README.read_text()
    )


def test_shared_folders_are_where_the_config_and_the_image_expect_them() -> None:
    claim = _one("PersistentVolumeClaim", "optuna-search-shared")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes share it"
    # The config's relative folders resolve under the image's working directory.
    (workdir,) = re.findall(r"^WORKDIR (\S+)", DOCKERFILE.read_text(), re.M)[-1:]
    config = load_config(str(ROOT / "study_configs" / "b453-space.yaml"))
    folders = {
        "data": config.data.data_dir,
        "checkpoints": config.checkpoints,
        "artifacts": config.artifacts,
    }
    pod = _worker_pod()
    mounts = _mounts(pod, _container(pod, "worker"))
    for sub, relative in folders.items():
        assert not relative.startswith("/"), relative
        assert mounts[f"{workdir}/{relative}"] == ("pvc:optuna-search-shared", sub)
    # The dashboard serves the same artifacts the workers write.
    dashboard = _dashboard_pod()
    container = _container(dashboard, "dashboard")
    command = container["command"]
    artifact_dir = command[command.index("--artifact-dir") + 1]
    assert _mounts(dashboard, container)[artifact_dir] == mounts[f"{workdir}/artifacts"]


@pytest.mark.parametrize("workload", ["worker", "dashboard"])
def test_prepare_makes_the_subpaths_then_waits_for_postgres(workload: str, tmp_path: Path) -> None:
    """The init container makes every subPath its pod mounts (as the app user: kubelet would
    make a missing one as root) and waits until the Service of the storage URL answers. Run
    here with the volume and the Service replaced by a folder and a local port."""
    pod = _worker_pod() if workload == "worker" else _dashboard_pod()
    prepare = _container(pod, "prepare")
    assert prepare["command"][:2] == ["python", "-c"]
    assert prepare["image"] == _container(pod, workload)["image"] == APP_IMAGE
    (shared,) = [
        path
        for path, source in _mounts(pod, prepare).items()
        if source == ("pvc:optuna-search-shared", "")
    ]
    subpaths = {
        sub
        for c in pod["containers"]
        for source, sub in _mounts(pod, c).values()
        if source == "pvc:optuna-search-shared"
    }
    url = urlsplit(_storage_url(_container(pod, workload)))
    service = f'("{url.hostname}", {url.port})'
    script = prepare["command"][2]
    assert f'"{shared}"' in script and service in script
    volume = tmp_path / "volume"
    volume.mkdir()
    script = script.replace(f'"{shared}"', repr(str(volume)))
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        waiting = subprocess.Popen(
            [sys.executable, "-c", script.replace(service, str(closed.getsockname()))],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert waiting.stdout is not None
            assert waiting.stdout.readline().startswith(f"waiting for {url.hostname}:{url.port}")
            assert waiting.poll() is None
        finally:
            waiting.kill()
            waiting.communicate()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        script = script.replace(service, str(server.getsockname()))
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert subpaths <= {p.name for p in volume.iterdir()}


# ---------------------------------------------------------------------------------------------
# Storage, references, secrets


def _storage_url(container: dict[str, Any]) -> str:
    value = _env(container)["OPTUNA_SEARCH_STORAGE"]["value"]
    assert isinstance(value, str)
    return value


def test_storage_url_points_at_the_postgres_service_with_the_secret() -> None:
    pg = _env(_postgres_container())
    service = _one("Service", "optuna-postgres")
    ports = {p["port"] for p in service["spec"]["ports"]}
    for container in (
        _container(_worker_pod(), "worker"),
        _container(_dashboard_pod(), "dashboard"),
    ):
        url = urlsplit(_storage_url(container))
        assert url.scheme == "postgresql", "psycopg 3, as in docker-compose.yml"
        assert url.username == pg["POSTGRES_USER"]["value"]
        assert url.password == "$(POSTGRES_PASSWORD)"
        assert url.path == "/" + pg["POSTGRES_DB"]["value"]
        assert url.hostname == service["metadata"]["name"] and url.port in ports
        # The same Secret as the database's own password.
        ref = _env(container)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == pg["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET, "key": "password"}


def test_variables_expand_only_ones_defined_before() -> None:
    """Kubernetes expands $(VAR) in env from the entries above it (a later one stays
    literal) and in command/args from any."""
    for where, pod in _pod_specs():
        for c in _containers(pod):
            defined: set[str] = set()
            for entry in c.get("env", []):
                for ref in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
                    assert ref in defined, f"{where} {c['name']}: {entry['name']} uses {ref}"
                defined.add(entry["name"])
            for word in [*c.get("command", []), *c.get("args", [])]:
                for ref in re.findall(r"\$\((\w+)\)", word):
                    assert ref in defined, f"{where} {c['name']}: {word}"


def _references(node: Any, key: str) -> Iterator[dict[str, Any]]:
    """Every mapping found under ``key`` anywhere in ``node``."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict):
                yield v
            yield from _references(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _references(v, key)


def test_every_referenced_object_exists_or_is_the_documented_one() -> None:
    have = {(d["kind"], d["metadata"]["name"]) for _, d in RESOURCES} | USER_CREATED
    for path, doc in RESOURCES:
        for ref in _references(doc, "secretKeyRef"):
            assert ("Secret", ref["name"]) in have, (path, ref)
        for ref in _references(doc, "configMapKeyRef"):
            assert ("ConfigMap", ref["name"]) in have, (path, ref)
        for ref in _references(doc, "secret"):
            assert ("Secret", ref["secretName"]) in have, (path, ref)
        for ref in _references(doc, "configMap"):
            assert ("ConfigMap", ref["name"]) in have, (path, ref)
        for ref in _references(doc, "persistentVolumeClaim"):
            assert ("PersistentVolumeClaim", ref["claimName"]) in have, (path, ref)
    for where, pod in _pod_specs():
        kind, name = where.split("/")
        templates = (
            {
                t["metadata"]["name"]
                for t in _one(kind, name)["spec"].get("volumeClaimTemplates", [])
            }
            if kind == "StatefulSet"
            else set()
        )
        volumes = {v["name"] for v in pod.get("volumes", [])} | templates
        for c in _containers(pod):
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, (where, c["name"], m["name"])
    for name, sts in _objects("StatefulSet").items():
        if "serviceName" in sts["spec"]:
            assert sts["spec"]["serviceName"] in _objects("Service"), name


def test_every_service_selects_a_pod_and_its_port() -> None:
    for name, service in _objects("Service").items():
        selector = service["spec"]["selector"]
        selected = [
            d
            for _, d in RESOURCES
            if d["kind"] in WORKLOADS
            and selector.items() <= _pod_template(d)["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        ports = {
            p.get("name"): p["containerPort"]
            for c in _pod_template(selected[0])["spec"]["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in ports or target in ports.values(), (name, target)
    for _, d in RESOURCES:
        if d["kind"] in ("Deployment", "StatefulSet"):
            labels = _pod_template(d)["metadata"]["labels"]
            assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_user_created_objects_are_documented_with_their_names_and_keys() -> None:
    text = README.read_text()
    secret = re.search(rf"kubectl create secret generic {SECRET} --from-literal=(\w+)=", text)
    assert secret, "the command that creates the Secret"
    keys = {r["key"] for _, d in RESOURCES for r in _references(d, "secretKeyRef")}
    assert keys == {secret.group(1)}
    # URL-safe, since it goes into the postgresql:// URL as it is.
    assert f'--from-literal={secret.group(1)}="$(openssl rand -hex 24)"' in text
    assert f"kubectl create configmap {CONFIGMAP} --from-file=" in text


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_no_password_is_written_down() -> None:
    assert not _objects("Secret"), "the Secret is created by the user, never committed"
    for where, pod in _pod_specs():
        for c in _containers(pod):
            for entry in c.get("env", []):
                if re.search("PASSWORD|SECRET|TOKEN", entry["name"]):
                    assert "value" not in entry, f"{where}: {entry['name']} has a literal value"
                    assert "secretKeyRef" in entry["valueFrom"], (where, entry["name"])
    texts = [p.read_text() for p in K8S_DIR.rglob("*") if p.is_file()]
    strings = [s for _, d in RESOURCES for s in _strings(d)]
    for text in [*texts, *strings]:
        for password in re.findall(r"://[^/\s:@]+:([^@\s]+)@", text):
            assert password == "$(POSTGRES_PASSWORD)", password
        for value in re.findall(r"password=(\S+)", text, re.I):
            assert value.startswith('"$(openssl'), value


# ---------------------------------------------------------------------------------------------
# Security, resources, compatibility with docker compose


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    labels = _one("Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    uid, gid = int(_dockerfile_arg("APP_UID")), int(_dockerfile_arg("APP_GID"))
    for where, pod in _pod_specs():
        pod_sc = pod.get("securityContext", {})
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), where
        for volume in pod.get("volumes", []):
            assert set(volume) - {"name"} <= PSS_RESTRICTED_VOLUMES, (where, volume)
        assert pod.get("automountServiceAccountToken") is False, f"{where}: no API access"
        for c in _containers(pod):
            sc = {**pod_sc, **c.get("securityContext", {})}
            assert sc.get("runAsNonRoot") is True, (where, c["name"])
            assert sc.get("runAsUser", 1) != 0, (where, c["name"])
            assert sc.get("privileged") is not True, (where, c["name"])
            assert c.get("securityContext", {}).get("allowPrivilegeEscalation") is False
            capabilities = c["securityContext"]["capabilities"]
            assert capabilities["drop"] == ["ALL"] and not capabilities.get("add")
            assert sc["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
            assert not any("hostPort" in p for p in c.get("ports", [])), (where, c["name"])
            if c["image"] == APP_IMAGE or where == "Pod/optuna-search-shell":
                # The image's user `app` is named, not numbered: runAsNonRoot needs the uid;
                # the shell pod writes files for the workers.
                assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (uid, gid, gid)


def test_every_container_requests_cpu_and_memory_and_caps_memory() -> None:
    for where, pod in _pod_specs():
        for c in _containers(pod):
            resources = c["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), (where, c["name"])
            assert "memory" in resources["limits"], (where, c["name"])
            if c["name"] != "worker":
                assert "nvidia.com/gpu" not in resources["limits"], (where, c["name"])


def _compose_names() -> set[str]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    names = {n for s in compose["services"].values() for n in s.get("environment", {})}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    return names


def test_variable_names_are_those_of_docker_compose() -> None:
    compose = _compose_names()
    for where, pod in _pod_specs():
        for c in _containers(pod):
            for name in _env(c):
                assert name in compose or name == "PGDATA", f"{where}: {name}"


def test_postgres_keeps_its_data_on_its_own_volume() -> None:
    sts = _one("StatefulSet", "optuna-postgres")
    assert sts["spec"]["replicas"] == 1
    container = _postgres_container()
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert container["image"] == compose["services"]["postgres"]["image"], "same major version"
    (template,) = sts["spec"]["volumeClaimTemplates"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == template["metadata"]["name"]]
    pgdata = _env(container)["PGDATA"]["value"]
    assert pgdata.startswith(mount["mountPath"] + "/"), "a subfolder: the root may hold lost+found"
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])


def test_dashboard_is_reached_with_port_forward_only() -> None:
    service = _one("Service", "optuna-search-dashboard")
    assert service["spec"]["type"] == "ClusterIP", "it has no login"
    (port,) = service["spec"]["ports"]
    container = _container(_dashboard_pod(), "dashboard")
    assert container["command"][:2] == ["optuna-search", "dashboard"]
    command = " ".join(container["command"])
    assert f"--host 0.0.0.0 --port {port['port']}" in command
    (container_port,) = container["ports"]
    assert container_port == {"name": port["targetPort"], "containerPort": port["port"]}
    forward = f"kubectl port-forward svc/{service['metadata']['name']} 8080:{port['port']}"
    assert forward in README.read_text()


# ---------------------------------------------------------------------------------------------
# README.md


KIND_WORDS = {
    "svc": "Service",
    "service": "Service",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "job": "Job",
    "pod": "Pod",
    "pvc": "PersistentVolumeClaim",
}


def test_readme_commands_name_objects_and_files_that_exist() -> None:
    text = README.read_text()
    names = {(d["kind"], d["metadata"]["name"]) for _, d in RESOURCES} | USER_CREATED
    words = "|".join(KIND_WORDS)
    commands = text.replace("deploy/kubernetes", "")  # a folder, not deploy/NAME
    refs = re.findall(rf"\b({words})/([a-z][a-z0-9-]*)", commands)
    refs += re.findall(rf"kubectl (?:get|describe|patch|delete) ({words}) ([a-z][a-z0-9-]*)", text)
    assert len(refs) >= 10
    for word, name in refs:
        assert (KIND_WORDS[word], name) in names, f"{word}/{name}"
    paths = set(re.findall(r"deploy/kubernetes/[\w./-]*\w", text))
    assert paths
    for path in paths:
        assert (ROOT / path).exists(), path
    labels = {
        (k, v)
        for _, d in RESOURCES
        if d["kind"] in WORKLOADS
        for k, v in _pod_template(d)["metadata"]["labels"].items()
    }
    for key, value in re.findall(r"-l ([\w./-]+)=([\w-]+)", text):
        assert (key, value) in labels, f"{key}={value}"
    studies = re.findall(r"--study /config/([a-z0-9][\w.-]*\.yaml)", text)
    assert studies
    for study in studies:
        assert (ROOT / "study_configs" / study).is_file(), study


def test_readme_goes_from_nothing_to_a_report_and_back() -> None:
    text = README.read_text()
    steps = [
        "kubectl apply -f deploy/kubernetes/namespace.yaml",
        "kubectl create secret generic optuna-postgres",
        "kubectl create configmap optuna-search-study",
        "docker build -t REGISTRY/optuna-search:TAG",
        "docker push REGISTRY/optuna-search:TAG",
        "kubectl cp cifar-10-python.tar.gz optuna-search-shell:/shared/data/",
        "kubectl apply -k deploy/kubernetes",
        "kubectl logs -f",
        "kubectl port-forward svc/optuna-search-dashboard 8080:8080",
        "optuna-search report --study /config/b453-space.yaml -o /tmp/report.html",
        'kubectl cp "$POD":/tmp/report.html report.html',
        '{"spec":{"completions":8,"parallelism":8}}',
        "kubectl delete job optuna-search-workers",
    ]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "in the order they are run"
    resume = text.index("**Resume**")
    assert text.index("kubectl apply -k deploy/kubernetes", resume) > positions[-1]
