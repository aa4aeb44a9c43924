"""Projects, tests, registrars and credential pools through the REST API of the whole stack:
every endpoint's happy path and its error paths (404, 409, 422 naming the field)."""

from __future__ import annotations

import uuid

import pytest
from api_envelope import data

pytestmark = pytest.mark.e2e


def error(resp, status):
    assert resp.status_code == status, resp.text
    return resp.json()["error"]


def locs(resp) -> list:
    assert resp.status_code == 422, resp.text
    return [d["loc"] for d in resp.json()["error"]["details"]]


def new_project(api, **kw):
    body = {"name": f"p-{uuid.uuid4().hex[:8]}", **kw}
    return data(api.post("/projects", json=body), 201)


def test_project_crud_with_slug_and_counts(api):
    slug = f"production-pbx-{uuid.uuid4().hex[:6]}"
    p = data(api.post("/projects", json={"name": "Production PBX", "slug": slug, "metadata": {"team": "noc"}}), 201)
    assert (p["slug"], p["name"], p["metadata"]) == (slug, "Production PBX", {"team": "noc"})
    assert (p["testCount"], p["probeCount"], p["registrarCount"]) == (0, 0, 0)
    assert data(api.get(f"/projects/{p['id']}"))["slug"] == slug

    patched = data(api.patch(f"/projects/{p['id']}", json={"name": "PBX 2", "metadata": {"team": "voice"}}))
    assert (patched["name"], patched["slug"], patched["metadata"]) == ("PBX 2", slug, {"team": "voice"})

    # the slug is unique among the account's projects
    other = new_project(api)
    assert error(api.post("/projects", json={"name": "x", "slug": slug}), 409)["code"] == "CONFLICT"
    assert error(api.patch(f"/projects/{other['id']}", json={"slug": slug}), 409)["code"] == "CONFLICT"

    listing = api.get("/projects", params={"perPage": 100}).json()
    assert p["id"] in [x["id"] for x in listing["data"]]

    t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "t", "steps": [{"actions": [
        {"type": "call", "dial_destination": "sip:nobody@127.0.0.1:9", "setup_timeout_ms": 100}]}]}), 201)
    run_id = data(api.post(f"/projects/{p['id']}/tests/{t['id']}/run"), 201)["testRunId"]
    assert api.delete(f"/projects/{p['id']}").status_code == 204
    assert error(api.get(f"/projects/{p['id']}"), 404)["code"] == "NOT_FOUND"
    # its tests and runs went with it
    assert api.get(f"/projects/{p['id']}/tests/{t['id']}").status_code == 404
    assert api.get(f"/runs/{run_id}/status").status_code == 404
    assert api.post("/tests/run", data={"test.id": t["id"]}).status_code == 404
    assert api.delete(f"/projects/{p['id']}").status_code == 404
    assert error(api.patch(f"/projects/{p['id']}", json={"name": "y"}), 404)["code"] == "NOT_FOUND"
    # the slug is free again
    data(api.post("/projects", json={"name": "again", "slug": slug}), 201)


def test_project_input_errors_name_the_field(api):
    assert ["slug"] in locs(api.post("/projects", json={"name": "x", "slug": "Not A Slug"}))
    assert ["name"] in locs(api.post("/projects", json={}))
    assert ["colour"] in locs(api.post("/projects", json={"name": "x", "colour": "red"}))


def test_pagination_accepts_page_per_page_and_limit_offset(api):
    for _ in range(3):
        new_project(api)
    total = api.get("/projects").json()["meta"]["pagination"]["total"]
    first = api.get("/projects", params={"page": 2, "perPage": 1}).json()
    assert first["meta"]["pagination"] == {"page": 2, "perPage": 1, "total": total, "totalPages": total}
    same = api.get("/projects", params={"limit": 1, "offset": 1}).json()
    assert same["data"] == first["data"] and same["meta"]["pagination"]["page"] == 2


def test_registrar_crud(api):
    p = new_project(api)
    base = f"/projects/{p['id']}/registrars"
    r = data(api.post(base, json={"name": "lab", "host": "127.0.0.1", "port": 5080, "transport": "tcp"}), 201)
    assert (r["host"], r["port"], r["transport"], r["domain"]) == ("127.0.0.1", 5080, "tcp", "127.0.0.1")
    assert data(api.get(f"/projects/{p['id']}"))["registrarCount"] == 1
    assert [x["id"] for x in data(api.get(base))] == [r["id"]]
    r2 = data(api.patch(f"{base}/{r['id']}", json={"domain": "lab.example", "port": 5090}))
    assert (r2["domain"], r2["port"], r2["host"]) == ("lab.example", 5090, "127.0.0.1")
    assert data(api.get(f"{base}/{r['id']}")) == r2
    assert ["transport"] in locs(api.post(base, json={"name": "x", "host": "h", "transport": "sctp"}))
    assert ["host"] in locs(api.post(base, json={"name": "x", "host": "bad host!"}))
    assert ["port"] in locs(api.patch(f"{base}/{r['id']}", json={"port": 0}))
    assert api.delete(f"{base}/{r['id']}").status_code == 204
    assert api.get(f"{base}/{r['id']}").status_code == 404
    assert data(api.get(f"/projects/{p['id']}"))["registrarCount"] == 0
    assert api.get("/projects/nope/registrars").status_code == 404


def test_credential_pool_passwords_are_write_only(api):
    p = new_project(api)
    base = f"/projects/{p['id']}/credential-pools"
    pool = data(api.post(base, json={"name": "callees", "credentials": [
        {"username": "1001", "password": "s3cret-1001"},
        {"username": "1002", "password": "s3cret-1002", "authUsername": "auth1002", "domain": "lab.example"}]}), 201)
    assert pool["credentials"] == [
        {"username": "1001", "authUsername": "", "domain": "", "hasPassword": True},
        {"username": "1002", "authUsername": "auth1002", "domain": "lab.example", "hasPassword": True}]
    for resp in (api.get(base), api.get(f"{base}/{pool['id']}")):
        assert "s3cret" not in resp.text
    # a user updated without a password keeps it; a new user needs one
    upd = data(api.patch(f"{base}/{pool['id']}", json={"credentials": [{"username": "1001"}]}))
    assert upd["credentials"] == [{"username": "1001", "authUsername": "", "domain": "", "hasPassword": True}]
    assert ["credentials", 1, "password"] in locs(api.patch(f"{base}/{pool['id']}", json={"credentials": [
        {"username": "1001"}, {"username": "1003"}]}))
    assert ["credentials", 1, "username"] in locs(api.post(base, json={"name": "dup", "credentials": [
        {"username": "a", "password": "x"}, {"username": "a", "password": "y"}]}))
    assert ["credentials"] in locs(api.post(base, json={"name": "empty", "credentials": []}))
    assert api.delete(f"{base}/{pool['id']}").status_code == 204
    assert api.get(f"{base}/{pool['id']}").status_code == 404


def _resources(api, project_id):
    reg = data(api.post(f"/projects/{project_id}/registrars", json={"name": "r", "host": "127.0.0.1"}), 201)
    pool = data(api.post(f"/projects/{project_id}/credential-pools", json={
        "name": "users", "credentials": [{"username": "1001", "password": "pw"}]}), 201)
    return reg, pool


def test_tests_crud_with_every_action_type(api):
    p = new_project(api)
    reg, pool = _resources(api, p["id"])
    steps = [
        {"actions": [
            {"type": "register", "target_pool": reg["id"], "credential_pool": pool["id"], "regexpire": 600},
            {"type": "wait_for_calls", "credential_pool": pool["id"], "answer_delay_ms": 100}]},
        {"actions": [
            {"type": "call", "dial_destination": "1001", "target_pool": reg["id"], "dtmf": "12#"},
            {"type": "load", "dial_destination": "sip:load@127.0.0.1:5070", "cps": 2.5, "hold_s": 10,
             "max_concurrency": 4}]},
    ]
    t = data(api.post(f"/projects/{p['id']}/tests", json={"name": "basic call", "steps": steps,
                                                          "metadata": {"k": "v"}}), 201)
    assert [[a["type"] for a in s["actions"]] for s in t["steps"]] == [["register", "wait_for_calls"], ["call", "load"]]
    assert t["steps"][0]["actions"][0]["regexpire"] == 600 and t["steps"][1]["actions"][1]["cps"] == 2.5
    assert t["steps"][1]["actions"][0]["dtmf"] == "12#"
    assert data(api.get(f"/projects/{p['id']}"))["testCount"] == 1
    assert [x["id"] for x in data(api.get(f"/projects/{p['id']}/tests"))] == [t["id"]]
    assert data(api.get(f"/projects/{p['id']}/tests/{t['id']}"))["name"] == "basic call"

    patched = data(api.patch(f"/projects/{p['id']}/tests/{t['id']}", json={"name": "renamed"}))
    assert patched["name"] == "renamed" and patched["steps"] == t["steps"] and patched["metadata"] == {"k": "v"}
    put = data(api.put(f"/projects/{p['id']}/tests/{t['id']}", json={
        "name": "simple", "steps": [{"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1"}]}]}))
    assert put["name"] == "simple" and len(put["steps"]) == 1 and put["metadata"] == {}

    # pools named by a test cannot be deleted while it does
    data(api.patch(f"/projects/{p['id']}/tests/{t['id']}", json={"steps": steps}))
    assert error(api.delete(f"/projects/{p['id']}/registrars/{reg['id']}"), 409)["code"] == "CONFLICT"
    assert error(api.delete(f"/projects/{p['id']}/credential-pools/{pool['id']}"), 409)["code"] == "CONFLICT"

    assert api.delete(f"/projects/{p['id']}/tests/{t['id']}").status_code == 204
    assert api.get(f"/projects/{p['id']}/tests/{t['id']}").status_code == 404
    assert data(api.get(f"/projects/{p['id']}"))["testCount"] == 0
    assert api.delete(f"/projects/{p['id']}/registrars/{reg['id']}").status_code == 204


def test_test_validation_names_step_action_and_attribute(api):
    p = new_project(api)
    reg, pool = _resources(api, p["id"])
    url = f"/projects/{p['id']}/tests"
    # type errors (pydantic) and domain errors come at the same kind of location
    resp = api.post(url, json={"name": "x", "steps": [
        {"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1"}]},
        {"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1", "codec": "MP3"}]}]})
    assert ["steps", 1, "actions", 0, "codec"] in locs(resp)
    resp = api.post(url, json={"name": "x", "steps": [
        {"actions": [{"type": "call", "dial_destination": "sip:a@127.0.0.1"}]},
        {"actions": [{"type": "call", "dial_destination": "not a uri"}]}]})
    assert locs(resp) == [["steps", 1, "actions", 0, "dial_destination"]]
    # pools must exist in the project
    resp = api.post(url, json={"name": "x", "steps": [{"actions": [
        {"type": "register", "target_pool": "nope", "credential_pool": pool["id"]},
        {"type": "wait_for_calls", "credential_pool": "missing"}]}]})
    assert locs(resp) == [["steps", 0, "actions", 0, "target_pool"], ["steps", 0, "actions", 1, "credential_pool"]]
    other = new_project(api)
    _, foreign_pool = _resources(api, other["id"])
    resp = api.post(url, json={"name": "x", "steps": [{"actions": [
        {"type": "register", "target_pool": reg["id"], "credential_pool": foreign_pool["id"]}]}]})
    assert locs(resp) == [["steps", 0, "actions", 0, "credential_pool"]]
    # an unknown action type and a missing field
    assert locs(api.post(url, json={"name": "x", "steps": [{"actions": [{"type": "dance"}]}]})) == [
        ["steps", 0, "actions", 0]]
    assert ["steps", 0, "actions", 0, "cps"] in locs(api.post(url, json={"name": "x", "steps": [{"actions": [
        {"type": "load", "dial_destination": "sip:a@127.0.0.1"}]}]}))
    assert api.post("/projects/nope/tests", json={"name": "x", "steps": [{"actions": [
        {"type": "call", "dial_destination": "sip:a@127.0.0.1"}]}]}).status_code == 404
    assert api.patch(f"/projects/{p['id']}/tests/nope", json={"name": "y"}).status_code == 404
