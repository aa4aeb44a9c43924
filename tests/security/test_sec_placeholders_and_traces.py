"""Finding 13 of #15, first two items.

13a: infra/compose.yaml and infra/k8s shipped placeholder secrets that passed the start-up checks
(the k8s JWT secret `CHANGE-ME-at-least-32-random-characters` is 39 characters long) and set no
CALLGAUGE_SECRETS_KEY (so each runs replica made its own key, in a container's ephemeral disk). Now
compose has no default for any secret, both set the secrets key, and every service exits on a
placeholder before it starts anything.

13b: the gateway named its server spans after the request path, so a kiosk link's token went to the
trace backend. Now spans are named by the route's template; neither spans nor log lines hold it."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from cryptography.fernet import Fernet

from callgauge_platform.placeholders import placeholder_secrets
from callgauge_app.settings import PlatformSettings
from callgauge_platform.stack import free_port

INFRA = Path(__file__).resolve().parents[2] / "infra"


def _k8s_secret() -> dict[str, str]:
    docs = [d for d in yaml.safe_load_all((INFRA / "k8s" / "configmap.yaml").read_text()) if d]
    return next(d for d in docs if d["kind"] == "Secret")["stringData"]


def test_every_k8s_placeholder_is_refused_and_the_secrets_key_is_set() -> None:
    data = _k8s_secret()
    assert "CALLGAUGE_SECRETS_KEY" in data
    settings = PlatformSettings(**{k.removeprefix("CALLGAUGE_").lower(): v for k, v in data.items()})
    assert sorted(placeholder_secrets(settings)) == sorted(["eventstore_url", "api_key", "jwt_secret", "secrets_key"])
    runs = next(d for d in yaml.safe_load_all((INFRA / "k8s" / "runs.yaml").read_text()) if d and d["kind"] == "Deployment")
    (container,) = runs["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "callgauge-secrets"}} in container["envFrom"]
    # real values pass
    real = PlatformSettings(jwt_secret=secrets.token_urlsafe(48), api_key="cgk_live_" + secrets.token_urlsafe(32),
                    secrets_key=Fernet.generate_key().decode(), eventstore_url=f"postgresql://cg:{secrets.token_urlsafe(16)}@db/cg")
    assert placeholder_secrets(real) == []


def test_compose_gives_no_secret_a_default_and_sets_the_secrets_key() -> None:
    text = (INFRA / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    for var in ("POSTGRES_PASSWORD", "CALLGAUGE_JWT_SECRET", "CALLGAUGE_API_KEY", "CALLGAUGE_SECRETS_KEY"):
        uses = re.findall(r"\$\{" + var + r"(:?[-?])?", text)
        assert uses and all(u == ":?" for u in uses), (var, uses)  # required, never a default
    runs_env = compose["services"]["runs"]["environment"]
    assert runs_env["CALLGAUGE_SECRETS_KEY"].startswith("${CALLGAUGE_SECRETS_KEY:?")


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Start a service as the manifests would; it must exit by itself (bounded: 60 s)."""
    return subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60)


def test_services_refuse_to_start_on_a_placeholder(sec_stack, tmp_path) -> None:
    base = {**sec_stack.env(), "CALLGAUGE_DATA_DIR": str(tmp_path), "CALLGAUGE_SERVICE_KEYS_DIR": "",
            "CALLGAUGE_ACCOUNTS_GRPC": f"127.0.0.1:{free_port()}", "CALLGAUGE_ACCOUNTS_HTTP_PORT": str(free_port()),
            "CALLGAUGE_GATEWAY_PORT": str(free_port())}
    data = _k8s_secret()
    accounts = _start("callgauge_accounts", {**base, "CALLGAUGE_JWT_SECRET": data["CALLGAUGE_JWT_SECRET"]})
    assert accounts.returncode == 2 and "CALLGAUGE_JWT_SECRET" in accounts.stderr, accounts.stderr[-2000:]
    gateway = _start("callgauge_gateway", {**base, "CALLGAUGE_API_KEY": data["CALLGAUGE_API_KEY"]})
    assert gateway.returncode == 2 and "CALLGAUGE_API_KEY" in gateway.stderr, gateway.stderr[-2000:]
    runs = _start("callgauge_runs", {**base, "CALLGAUGE_SECRETS_KEY": data["CALLGAUGE_SECRETS_KEY"],
                                     "CALLGAUGE_EVENTSTORE_URL": data["CALLGAUGE_EVENTSTORE_URL"]})
    assert runs.returncode == 2, runs.stderr[-2000:]
    assert "CALLGAUGE_SECRETS_KEY" in runs.stderr and "CALLGAUGE_EVENTSTORE_URL" in runs.stderr


def test_kiosk_tokens_never_reach_span_names_or_logs(edge, sec_stack) -> None:
    token = "kiosk" + secrets.token_urlsafe(24)
    r = httpx.get(f"{edge.url}/reports/kiosk/{token}")
    assert r.status_code == 404
    r = httpx.get(f"{edge.url}/reports/kiosk/{token}/nothing-here")
    assert r.status_code == 404
    deadline = time.monotonic() + 30
    while not any(s.name == "GET /reports/kiosk/{token}" for s in edge.collector.spans):
        assert time.monotonic() < deadline, [s.name for s in edge.collector.spans]
        time.sleep(0.2)
    for span in edge.collector.spans:
        assert token not in span.name and token not in repr(span.attributes), span
    kiosk = next(s for s in edge.collector.spans if s.name == "GET /reports/kiosk/{token}")
    assert kiosk.attributes["http.route"] == "/reports/kiosk/{token}"
    logs = [edge.log_path, *(sec_stack.settings.data_dir / "logs").glob("*.log")]
    for path in logs:
        assert token not in path.read_text(errors="replace"), path
