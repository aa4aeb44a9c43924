"""infra/compose.yaml and infra/k8s give each service its own private service key (and no other's),
every public key, and the key directory setting; k8s denies ingress by default and lets each gRPC
port be reached by its callers only (NetworkPolicy)."""

from __future__ import annotations

from pathlib import Path

import yaml

from callgauge_platform.service_auth import ACL, IDENTITIES

INFRA = Path(__file__).resolve().parents[2] / "infra"
MODULE_IDENTITY = {"callgauge_accounts": "accounts", "callgauge_runs": "runs", "callgauge_billing": "billing",
                   "callgauge_gateway": "gateway", "callgauge_media": "media-engine"}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_compose_mounts_one_private_key_per_service_and_every_public_key() -> None:
    compose = _docs(INFRA / "compose.yaml")[0]
    for name, svc in compose["services"].items():
        cmd = svc.get("command") or []
        if len(cmd) < 3 or cmd[2] not in MODULE_IDENTITY:
            continue
        ident = MODULE_IDENTITY[cmd[2]]
        assert svc["environment"]["CALLGAUGE_SERVICE_KEYS_DIR"] == "/run/callgauge/keys"
        assert svc["secrets"] == [{"source": f"{ident}-key", "target": f"/run/callgauge/keys/{ident}.key"}], name
        assert {c["target"] for c in svc["configs"]} == {f"/run/callgauge/keys/{i}.pub" for i in IDENTITIES}
    assert "operator-key" not in compose["secrets"], "the operator's private key stays with the operator"


def test_k8s_pods_mount_their_own_key_and_network_policies_follow_the_acl() -> None:
    config = next(d for d in _docs(INFRA / "k8s" / "configmap.yaml") if d["kind"] == "ConfigMap")["data"]
    assert config["CALLGAUGE_SERVICE_KEYS_DIR"] == "/run/callgauge/keys"
    for path in (INFRA / "k8s").glob("*.yaml"):
        for doc in _docs(path):
            if doc["kind"] != "Deployment":
                continue
            pod = doc["spec"]["template"]["spec"]
            (c,) = pod["containers"]
            ident = MODULE_IDENTITY[c["command"][2]]
            vol = next(v for v in pod["volumes"] if v["name"] == "service-keys")
            sources = vol["projected"]["sources"]
            assert {"secret": {"name": f"callgauge-service-key-{ident}"}} in sources
            assert [s for s in sources if "secret" in s] == [{"secret": {"name": f"callgauge-service-key-{ident}"}}]
            assert {"configMap": {"name": "callgauge-service-public-keys"}} in sources
            assert any(m["mountPath"] == "/run/callgauge/keys" for m in c["volumeMounts"])
    policies = {d["metadata"]["name"]: d for d in _docs(INFRA / "k8s" / "networkpolicy.yaml")}
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    for service in ("accounts", "runs", "billing"):
        rule = policies[f"{service}-ingress"]["spec"]["ingress"]
        callers = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for r in rule for p in r["from"]}
        allowed = set().union(*ACL[service].values()) - {"operator"}
        assert callers == allowed, (service, callers, allowed)
