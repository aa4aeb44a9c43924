"""The runs read model keeps a project's counts (tests, registrars, probes) as things are added and
deleted, drops deleted entries, and survives its persisted form."""

from __future__ import annotations

from callgauge_proto.callgauge.events.v1 import monitor_pb2, runs_pb2
from callgauge_runs.handlers.views import ReadModel


def test_counts_follow_creations_and_deletions_and_survive_the_rows():
    view = ReadModel()
    events = [
        runs_pb2.ProjectCreated(project_id="p1", account_id="a", name="P", slug="p", mode="live"),
        runs_pb2.TestCreated(test_id="t1", project_id="p1", account_id="a", name="T", mode="live"),
        runs_pb2.TestCreated(test_id="t2", project_id="p1", account_id="a", name="U", mode="live"),
        runs_pb2.TestDeleted(test_id="t1", project_id="p1"),
        runs_pb2.RegistrarCreated(registrar_id="r1", project_id="p1", account_id="a", mode="live", name="r",
                                  host="h", port=5060, transport="udp", domain="h"),
        monitor_pb2.ProbeCreated(probe_id="x1", project_id="p1", account_id="a", mode="live", test_id="t2"),
        monitor_pb2.ProbeCreated(probe_id="x2", project_id="p1", account_id="a", mode="live", test_id="t2"),
        monitor_pb2.ProbeDeleted(probe_id="x1", project_id="p1"),
        runs_pb2.CredentialPoolCreated(pool_id="c1", project_id="p1", account_id="a", mode="live", name="c",
                                       credentials=[runs_pb2.StoredCredential(username="u",
                                                                              password_ciphertext=b"gAAAA")]),
        runs_pb2.RunRequested(run_id="run1", project_id="p1", test_id="t2", account_id="a", mode="live"),
        runs_pb2.RunKioskLinkCreated(run_id="run1", token_sha256="ab"),
    ]
    for e in events:
        view.apply(e, None)
    pv = view.projects["p1"]
    assert (pv.test_count, pv.registrar_count, pv.probe_count) == (1, 1, 1)
    assert set(view.tests) == {"t2"} and view.kiosk == {"ab": "run1"}

    again = ReadModel()
    again.load_rows(view.rows(), 11)
    assert again.rows() == view.rows()
    assert again.pools["c1"].credentials[0].password_ciphertext == "gAAAA"
    for e, gone in ((runs_pb2.CredentialPoolDeleted(pool_id="c1", project_id="p1"), "pool:c1"),
                    (runs_pb2.RunKioskLinkRevoked(run_id="run1", token_sha256="ab"), "kiosk:ab"),
                    (runs_pb2.ProjectDeleted(project_id="p1"), "project:p1")):
        assert gone in again.apply(e, None) and again.row(gone) is None  # a row to delete
    assert again.projects == {} and again.pools == {} and again.kiosk == {}


def test_tests_and_registrars_answer_the_rows_they_change():
    view = ReadModel()
    view.apply(runs_pb2.ProjectCreated(project_id="p1", account_id="a", name="P", slug="p", mode="live"), None)
    reg = dict(project_id="p1", account_id="a", mode="live", name="r", host="h", port=5060, transport="udp",
               domain="h")
    assert view.apply(runs_pb2.TestCreated(test_id="t1", project_id="p1", account_id="a", name="T", mode="live"),
                      None) == {"test:t1", "project:p1"}
    assert view.apply(runs_pb2.TestUpdated(test_id="t1", name="T2"), None) == {"test:t1"}
    assert view.tests["t1"].name == "T2"
    assert view.apply(runs_pb2.TestUpdated(test_id="nope", name="X"), None) == {"test:nope"}
    assert "nope" not in view.tests
    assert view.apply(runs_pb2.RegistrarCreated(registrar_id="r1", **reg), None) == {"registrar:r1", "project:p1"}
    assert view.apply(runs_pb2.RegistrarUpdated(registrar_id="r1", name="r2", host="h2"),
                      None) == {"registrar:r1"}
    assert view.registrars["r1"].name == "r2"
    assert view.apply(runs_pb2.RegistrarCreated(registrar_id="r9", **{**reg, "project_id": "gone"}),
                      None) == {"registrar:r9"}  # no project row to count on
    assert view.apply(runs_pb2.RegistrarDeleted(registrar_id="r1", project_id="p1"), None) == {"registrar:r1",
                                                                                               "project:p1"}
    assert view.apply(runs_pb2.TestDeleted(test_id="t1", project_id="p1"), None) == {"test:t1", "project:p1"}
    assert view.apply(runs_pb2.TestDeleted(test_id="t1", project_id="p1"), None) == {"test:t1"}  # again: no count
    pv = view.projects["p1"]
    assert (pv.test_count, pv.registrar_count) == (0, 0)
    assert view.tests == {} and set(view.registrars) == {"r9"}
