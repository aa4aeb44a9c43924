"""Settings per service (issue #19 item 8): each service reads its own settings class, composed of
the shared parts of callgauge_platform.settings and its own fields; the docs' settings reference is
rendered from those classes (scripts/mkdocs_reference.py); `callgauge up` builds each service's
settings; the environment variable names are those of the one class the services shared before."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from callgauge_app.settings import SERVICE_SETTINGS
from callgauge_platform import settings as platform_settings
from callgauge_platform.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"accounts": "services/accounts/callgauge_accounts", "runs": "services/runs/callgauge_runs",
            "billing": "services/billing/callgauge_billing", "media-engine": "services/media-engine/callgauge_media",
            "gateway": "services/gateway/callgauge_gateway"}

# Every CALLGAUGE_* variable the single Settings class read before the split: none may vanish.
BEFORE = """data_dir eventstore_url kafka_bootstrap kafka_topic_prefix bind_host runs_grpc billing_grpc
accounts_grpc runs_http_port billing_http_port media_http_port accounts_http_port gateway_host gateway_port
public_url api_key instance_token jwt_secret jwt_ttl_seconds refresh_ttl_seconds rate_limit_per_minute
api_key_rate_limit_max account_rate_limit_per_minute max_api_keys_per_account auth_failure_window_seconds
auth_failures_per_client login_failures_per_account trusted_proxies report_session_ttl_seconds redis_url
gateway_max_body_bytes gateway_max_json_depth idempotency_ttl_seconds secrets_key service_keys_dir
service_token_ttl_seconds media_max_calls media_calls_per_worker media_workers media_rtp_port_base
media_engine_id media_run_fetch_wait_ms media_lease_renew_s run_lease_s media_drain_timeout_s
media_sip_message_log media_tls_ca_file media_tls_cert_file media_tls_key_file media_load_shards
quota_planned_calls_per_run quota_concurrent_runs quota_concurrent_calls media_fair_reserve_calls
dial_allow_cidrs dial_deny_cidrs dial_deny_hosts dial_allow_ports dial_deny_ports responder_host
responder_port responder_rtp_port billing_mode billing_currency billing_welcome_credit_minor
billing_price_call_second_minor billing_price_registration_minor billing_price_probe_run_minor
billing_min_balance_minor billing_max_top_up_minor billing_reservation billing_payment_provider audio_scorers
audio_score_queue audio_max_recordings_per_run audio_max_run_mb audio_max_total_mb audio_retention_days
media_progress_interval_s media_recorded_jitter_buffer_ms probe_min_interval_seconds probe_tick_seconds monitor_scheduler
webhook_allow_private webhook_retry_base_seconds log_level log_json otlp_endpoint""".split()


def _all_names() -> dict[str, set[str]]:
    """Every field and method of every settings class, by class."""
    classes = [*SERVICE_SETTINGS.values(), StackSettings]
    return {c.__name__: set(c.model_fields) | {n for n in dir(c) if not n.startswith("_") and n not in
                                                dir(platform_settings.CallgaugeSettings)} for c in classes}


def _attributes_read(package: Path) -> set[str]:
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
    return names


def test_no_variable_was_renamed_or_dropped():
    names = set().union(*(set(c.model_fields) for c in [*SERVICE_SETTINGS.values(), StackSettings]))
    assert sorted(set(BEFORE) - names) == []
    assert sorted(names - set(BEFORE)) == []  # a new setting: add it here too


def test_each_service_class_has_only_part_of_the_settings():
    for name, cls in SERVICE_SETTINGS.items():
        assert cls.model_config["env_prefix"] == "CALLGAUGE_", name
        assert len(cls.model_fields) < len(BEFORE) // 2, (name, len(cls.model_fields))


@pytest.mark.parametrize("service", list(PACKAGES))
def test_a_service_reads_only_settings_its_class_declares(service):
    """A setting's name read in a service's code (as an attribute) that belongs to another settings
    class but not to this service's would be an AttributeError at run time."""
    known = set().union(*_all_names().values())
    cls = SERVICE_SETTINGS[service]
    mine = _all_names()[cls.__name__]
    read = _attributes_read(ROOT / PACKAGES[service]) & known
    # names that are also attributes of other things the services use (an re.Match's .group())
    read -= {"group"} if "group" not in mine else set()
    assert sorted(read - mine) == []


def _settings_page() -> str:
    spec = importlib.util.spec_from_file_location("mkdocs_reference", ROOT / "scripts" / "mkdocs_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.settings_page()


def test_each_services_documented_settings_are_what_it_reads():
    page = _settings_page()
    for name, cls in SERVICE_SETTINGS.items():
        section = page.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        listed = {line.split("`")[1].removeprefix("CALLGAUGE_").lower() for line in section.splitlines()
                  if line.startswith("| `CALLGAUGE_")}
        assert listed == set(cls.model_fields), name
    stack = page.split("## callgauge up\n", 1)[1]
    assert {line.split("`")[1] for line in stack.splitlines() if line.startswith("| `CALLGAUGE_")} == {
        f"CALLGAUGE_{n.upper()}" for n in StackSettings.model_fields}


def test_the_billing_service_does_not_read_the_gateways_settings():
    from callgauge_billing.settings import BillingSettings
    from callgauge_gateway.settings import GatewaySettings

    assert "billing_mode" in BillingSettings.model_fields and "billing_mode" not in GatewaySettings.model_fields
    assert "redis_url" in GatewaySettings.model_fields and "redis_url" not in BillingSettings.model_fields
    assert "eventstore_url" not in GatewaySettings.model_fields  # the gateway keeps no event store


def test_env_names_are_unchanged(monkeypatch):
    from callgauge_billing.settings import BillingSettings
    from callgauge_media.settings import MediaSettings

    monkeypatch.setenv("CALLGAUGE_BILLING_MODE", "prepaid")
    monkeypatch.setenv("CALLGAUGE_KAFKA_TOPIC_PREFIX", "t1-")
    monkeypatch.setenv("CALLGAUGE_MEDIA_MAX_CALLS", "7")
    b, m = BillingSettings(), MediaSettings()
    assert b.billing_mode == "prepaid" and b.topic("runs") == "t1-callgauge.runs.v1"
    assert m.media_max_calls == 7 and m.topic("media") == "t1-callgauge.media.v1"


def test_up_builds_each_services_settings(tmp_path):
    from callgauge_platform.stack import Stack

    stack = Stack(StackSettings(data_dir=tmp_path, billing_mode="prepaid", media_max_calls=9),
                  service_settings=SERVICE_SETTINGS)
    stack.settings.api_key = "cgk_live_x"
    envs = {name: stack.env(name) for name in SERVICE_SETTINGS}
    assert envs["billing"]["CALLGAUGE_BILLING_MODE"] == "prepaid"
    assert envs["media-engine"]["CALLGAUGE_MEDIA_MAX_CALLS"] == "9"
    assert "CALLGAUGE_BILLING_MODE" not in envs["gateway"] and "CALLGAUGE_MEDIA_MAX_CALLS" not in envs["billing"]
    assert envs["gateway"]["CALLGAUGE_API_KEY"] == "cgk_live_x"
    for name, cls in SERVICE_SETTINGS.items():  # each child is handed exactly its class's settings
        given = {k.removeprefix("CALLGAUGE_").lower() for k in envs[name] if k.startswith("CALLGAUGE_")}
        assert given == set(cls.model_fields) | {"instance_token"}, name


def test_up_refuses_a_bad_value_before_it_starts_anything(tmp_path):
    from callgauge_platform.stack import Stack, StackError

    stack = Stack(StackSettings(data_dir=tmp_path, billing_welcome_credit_minor=-5),
                  service_settings=SERVICE_SETTINGS)
    with pytest.raises(StackError, match="billing.*billing_welcome_credit_minor"):
        stack.check_settings()
    assert not (tmp_path / "logs").exists()
    with pytest.raises(ValidationError):
        SERVICE_SETTINGS["billing"](billing_welcome_credit_minor=-5)


def test_callgauge_up_refuses_bad_values_with_a_message(tmp_path, monkeypatch, capsys):
    from callgauge_app.main import main

    monkeypatch.setenv("CALLGAUGE_GATEWAY_PORT", "abc")  # the supervisor's own setting
    assert main(["up", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "callgauge up: CALLGAUGE_GATEWAY_PORT (gateway_port)" in err and "Nothing was started." in err
    monkeypatch.delenv("CALLGAUGE_GATEWAY_PORT")
    monkeypatch.setenv("CALLGAUGE_MEDIA_MAX_CALLS", "0")  # a service's: found before anything starts
    assert main(["up", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "media-engine: CALLGAUGE_MEDIA_MAX_CALLS (media_max_calls)" in err and "Traceback" not in err
    assert not (tmp_path / "logs").exists()
