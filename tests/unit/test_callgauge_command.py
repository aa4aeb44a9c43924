"""The `callgauge` command is one typer application (issue #19 item 6): the API and operator
commands of callgauge_cli and the commands that start or compose services, which the application
package (callgauge_app) adds. These run the console script's entry point in-process."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone

import pytest

from callgauge_app.demo import demo_test, format_run
from callgauge_app.main import main
from callgauge_client import CallMeasurement, Run

COMMANDS = ("up", "demo", "service", "responder", "replay", "events", "credit", "service-keys",
            "login", "logout", "keys", "projects", "tests", "run", "runs")


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    listed = {line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert set(COMMANDS) <= listed, text


@pytest.mark.parametrize("argv", [["up", "--help"], ["demo", "--help"], ["replay", "--help"],
                                  ["events", "tail", "--help"], ["events", "export", "--help"],
                                  ["credit", "--help"], ["service", "--help"]])
def test_each_command_has_its_own_help(argv, capsys):
    assert main(argv) == 0
    assert "Usage: callgauge " + argv[0] in capsys.readouterr().out


def test_replay_of_billing_is_refused_with_the_reason(tmp_path, capsys):
    assert main(["replay", "--service", "billing", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "billing keeps no read model to rebuild" in err and "only `--service runs`" in err
    assert list(tmp_path.iterdir()) == []  # nothing opened or written


def test_replay_of_an_unknown_service_is_refused(tmp_path, capsys):
    assert main(["replay", "--service", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "no service 'nope' keeps a read model" in capsys.readouterr().err


def test_an_unknown_service_is_a_usage_error(capsys):
    assert main(["service", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_demo_with_url_needs_a_key(monkeypatch, capsys):
    monkeypatch.delenv("CALLGAUGE_API_KEY", raising=False)
    assert main(["demo", "--url", "http://127.0.0.1:9"]) == 2
    assert "--url needs --api-key" in capsys.readouterr().err


def test_demo_against_an_unreachable_gateway_fails_with_a_message(capsys):
    # port 9 (discard) on loopback: nothing listens there on these machines
    assert main(["demo", "--url", "http://127.0.0.1:9", "--api-key", "cgk_test_x"]) == 1
    assert "demo failed: cannot reach the Callgauge gateway" in capsys.readouterr().err


def test_service_keys_makes_every_pair(tmp_path, capsys):
    d = tmp_path / "keys"
    assert main(["service-keys", str(d)]) == 0
    assert "made " in capsys.readouterr().out
    keys = sorted(p.name for p in d.glob("*.key"))
    assert "gateway.key" in keys and "operator.key" in keys
    assert all(stat.S_IMODE(os.stat(d / k).st_mode) == 0o600 for k in keys)
    assert main(["service-keys", str(d)]) == 0
    assert "nothing (every pair exists)" in capsys.readouterr().out


def test_events_export_refuses_a_bad_file_name(tmp_path, capsys):
    assert main(["events", "export", "--to", str(tmp_path / "m.txt"), "--bootstrap", "127.0.0.1:9",
                 "--timeout", "0.1"]) == 2
    assert "--to must end in .csv or .parquet" in capsys.readouterr().err


def test_demo_test_calls_the_destination():
    body = demo_test("sip:echo@127.0.0.1:5999")
    assert body["steps"][0]["actions"][0]["dial_destination"] == "sip:echo@127.0.0.1:5999"
    assert demo_test("x")["steps"][0]["actions"][0]["dial_destination"] == "x"  # DEMO_TEST untouched


def test_format_run_shows_measured_and_unmeasured_figures():
    run = Run.model_validate({"id": "r1", "status": "COMPLETED", "passed": True, "resultDescription": "all held",
                              "summary": {"callsAnswered": 1, "callsAttempted": 1, "asr": 1.0, "mosMean": 4.4,
                                          "setupP95Ms": 12.5}})
    call = CallMeasurement.model_validate({
        "index": 0, "outcome": "SUCCESS", "sipCode": 200, "setupTimeMs": 12.5, "postDialDelayMs": 10.0,
        "codec": "PCMU", "durationMs": 5000, "txPackets": 250, "rxPackets": 249, "lossPct": 0.4,
        "jitterMs": None, "rttMs": 0.3, "mos": 4.4, "startedAt": datetime(2026, 1, 1, tzinfo=timezone.utc)})
    text = format_run(run, [call])
    assert text.startswith("Run r1 — COMPLETED (passed)")
    assert "calls 1/1 answered, ASR 100%, MOS mean 4.40, setup p95 12.5 ms" in text
    row = text.splitlines()[-1].split()
    assert row[:4] == ["0", "SUCCESS", "200", "12.5"] and "5.0" in row and "—" in row  # talk 5.0 s, jitter —


def test_the_event_areas_are_the_commands_choices():
    from typing import get_args

    from callgauge_bus.events_cli import AREAS
    from callgauge_cli.operator import Area

    assert get_args(Area) == AREAS


def test_the_service_choices_are_the_services():
    from typing import get_args

    from callgauge_app.main import SERVICES, ServiceName

    assert get_args(ServiceName) == tuple(SERVICES)
