"""infra/compose.yaml and infra/k8s/*.yaml cannot be started here: check that they parse, that every
service they start is a module of this code base, and that every CALLGAUGE_* variable they set is a
setting the code reads."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

from callgauge_app.settings import PlatformSettings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE = INFRA / "compose.yaml"
K8S_FILES = sorted((INFRA / "k8s").glob("*.yaml"))
SERVICE_MODULES = {"callgauge_accounts", "callgauge_runs", "callgauge_billing", "callgauge_gateway", "callgauge_media"}
FIELDS = {f"CALLGAUGE_{name.upper()}" for name in PlatformSettings.model_fields}
VAR = re.compile(r"\bCALLGAUGE_[A-Z0-9_]+\b")


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _module_of(command) -> str | None:
    if isinstance(command, str):
        command = command.split()
    if command and len(command) >= 3 and command[0] in ("python", "python3") and command[1] == "-m":
        return command[2]
    return None


def _containers(doc: dict) -> list[dict]:
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]["containers"]
    return []


def _env_names(text: str) -> set[str]:
    # ${CALLGAUGE_X:-...} in compose, keys in environment maps, ConfigMap/Secret data, comments
    return set(VAR.findall(text))


def test_files_exist() -> None:
    assert COMPOSE.is_file()
    assert K8S_FILES, "no manifests under infra/k8s"


def test_compose_services_and_commands() -> None:
    compose = _docs(COMPOSE)[0]
    services = compose["services"]
    assert {"kafka", "postgres", "runs", "billing", "gateway"} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"], "Kafka must run in KRaft mode"
    modules: dict[str, str] = {}
    for name, svc in services.items():
        module = _module_of(svc.get("command"))
        if module:
            modules[name] = module
            assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
            env = svc.get("environment") or {}
            assert isinstance(env, dict), f"{name}: environment must be a map"
    assert set(modules.values()) == SERVICE_MODULES
    media = [n for n, m in modules.items() if m == "callgauge_media"]
    assert len(media) >= 2, "two media-engine replicas"
    ports = {services[n]["environment"]["CALLGAUGE_MEDIA_HTTP_PORT"] for n in media}
    assert len(ports) == len(media), "media-engine replicas need distinct health ports"


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_k8s_manifest(path: Path) -> None:
    docs = _docs(path)
    assert docs
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), f"{path.name}: a document without apiVersion/kind"
        for c in _containers(doc):
            module = _module_of(c.get("command") or c.get("args"))
            assert module in SERVICE_MODULES, f"{path.name}: {c['name']} does not start a service"
            assert importlib.util.find_spec(module) is not None
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["port"] in ("http", ports.get("http"))
            if module in ("callgauge_runs", "callgauge_billing"):
                assert c["startupProbe"]["grpc"]["port"] == ports["grpc"], "gRPC health probe"


def test_k8s_covers_every_service_with_a_service_object() -> None:
    modules, services = set(), set()
    for path in K8S_FILES:
        for doc in _docs(path):
            for c in _containers(doc):
                modules.add(_module_of(c["command"]))
            if doc["kind"] == "Service":
                services.add(doc["metadata"]["name"])
    assert modules == SERVICE_MODULES
    assert {"runs", "billing", "gateway", "media-engine"} <= services


def test_k8s_configmap_ports_match_container_ports() -> None:
    config = next(d for p in K8S_FILES for d in _docs(p) if d["kind"] == "ConfigMap")["data"]
    containers = {_module_of(c["command"]): c for p in K8S_FILES for d in _docs(p) for c in _containers(d)}

    def port(module: str, name: str) -> int:
        return next(p["containerPort"] for p in containers[module]["ports"] if p["name"] == name)

    assert int(config["CALLGAUGE_RUNS_HTTP_PORT"]) == port("callgauge_runs", "http")
    assert int(config["CALLGAUGE_BILLING_HTTP_PORT"]) == port("callgauge_billing", "http")
    assert int(config["CALLGAUGE_MEDIA_HTTP_PORT"]) == port("callgauge_media", "http")
    assert int(config["CALLGAUGE_GATEWAY_PORT"]) == port("callgauge_gateway", "http")
    assert int(config["CALLGAUGE_RUNS_GRPC"].rpartition(":")[2]) == port("callgauge_runs", "grpc")
    assert int(config["CALLGAUGE_BILLING_GRPC"].rpartition(":")[2]) == port("callgauge_billing", "grpc")
    assert config["CALLGAUGE_BIND_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("path", [COMPOSE, INFRA / "Dockerfile", *K8S_FILES], ids=lambda p: p.name)
def test_every_callgauge_variable_is_a_setting(path: Path) -> None:
    unknown = _env_names(path.read_text()) - FIELDS
    assert not unknown, f"{path.name}: not fields of callgauge_app.settings.PlatformSettings: {sorted(unknown)}"


def test_the_check_catches_an_unknown_variable() -> None:
    assert _env_names("env:\n  CALLGAUGE_NO_SUCH_SETTING: 1\n") - FIELDS == {"CALLGAUGE_NO_SUCH_SETTING"}


def test_servers_listen_on_bind_host() -> None:
    assert PlatformSettings().bind_host == "127.0.0.1"
    s = PlatformSettings(bind_host="0.0.0.0", runs_grpc="runs.callgauge.svc:50051")
    assert s.grpc_listen(s.runs_grpc) == "0.0.0.0:50051"
    assert PlatformSettings().grpc_listen("127.0.0.1:50051") == "127.0.0.1:50051"


AUDIO_MOUNT = "/var/lib/callgauge/audio"   # CALLGAUGE_DATA_DIR (the image's) / "audio"


def test_recordings_are_on_one_volume_shared_by_the_gateway_and_the_media_engines() -> None:
    """The media engines write recordings, the gateway serves them: both must mount the same
    volume at the data dir's audio folder, in compose (volume 'audio') and in k8s (a ReadWriteMany
    PersistentVolumeClaim, since pods of both deployments run on several nodes)."""
    from callgauge_platform.recordings import recordings_dir  # noqa: PLC0415

    assert str(recordings_dir("/var/lib/callgauge")).startswith(AUDIO_MOUNT + "/")
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert "CALLGAUGE_DATA_DIR=/var/lib/callgauge" in dockerfile

    compose = _docs(COMPOSE)[0]
    for name, svc in compose["services"].items():
        if _module_of(svc.get("command")) in ("callgauge_gateway", "callgauge_media"):
            assert f"audio:{AUDIO_MOUNT}" in (svc.get("volumes") or []), f"compose {name}: no shared 'audio' volume"
    assert "audio" in compose["volumes"]

    docs = [d for p in K8S_FILES for d in _docs(p)]
    claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    mounted: dict[str, str] = {}
    for doc in docs:
        for c in _containers(doc):
            module = _module_of(c["command"])
            if module not in ("callgauge_gateway", "callgauge_media"):
                continue
            volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"].get("volumes", [])}
            mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == AUDIO_MOUNT), None)
            assert mount is not None, f"k8s {doc['metadata']['name']}: nothing mounted at {AUDIO_MOUNT}"
            assert not mount.get("readOnly") or module == "callgauge_gateway"
            claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
            assert claim in claims, f"k8s {doc['metadata']['name']}: no PersistentVolumeClaim {claim}"
            mounted[module] = claim
    assert set(mounted) == {"callgauge_gateway", "callgauge_media"}
    assert len(set(mounted.values())) == 1, f"gateway and media engines mount different claims: {mounted}"
    claim = claims[mounted["callgauge_media"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"], "pods on several nodes share it"
    assert claim["metadata"]["namespace"] == "callgauge"
