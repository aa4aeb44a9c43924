"""The import graph (issue #19 items 6, 7): libraries are layered, so no two libraries import each
other, and no library imports a service; the application (apps/callgauge_app, the `callgauge`
command) is the top layer, the only package that imports services, and no service imports it. The
contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them over the static
import graph (direct and indirect imports), with no exception."""

from __future__ import annotations

import tomllib
from pathlib import Path

from importlinter import cli  # the dev extra (install.sh installs it)

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _contract(cid: str) -> dict:
    return next(c for c in _config()["contracts"] if c["id"] == cid)


def _libraries() -> set[str]:
    return {p.name for p in (ROOT / "libs").iterdir() if (p / "__init__.py").exists()}


def _apps() -> set[str]:
    return {p.name for p in (ROOT / "apps").iterdir() if (p / "__init__.py").exists()}


def _services() -> set[str]:
    return {
        p.name for p in (ROOT / "services").glob("*/callgauge_*") if (p / "__init__.py").exists()
    }


def test_every_library_and_service_is_in_the_contracts():
    """A new library or service cannot slip past the contracts by not being listed."""
    libs, services, apps = _libraries(), _services(), _apps()
    assert libs and services and apps == {"callgauge_app"}
    layers = [{name.strip() for name in layer.split("|")} for layer in _contract("libs-layered")["layers"]]
    assert layers[0] == apps  # the application on top of every library
    assert set().union(*layers[1:]) == libs
    forbidden = _contract("libs-not-services")
    assert set(forbidden["source_modules"]) == libs
    assert set(forbidden["forbidden_modules"]) == services
    not_app = _contract("services-not-app")
    assert set(not_app["source_modules"]) == services and set(not_app["forbidden_modules"]) == apps
    assert set(_config()["root_packages"]) == apps | libs | services


def test_no_exception_is_let_through():
    for contract in _config()["contracts"]:
        assert not contract.get("ignore_imports"), contract["id"]


def test_import_contracts_are_kept(capsys):
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(_config()['contracts'])} kept, 0 broken" in out, out


def test_the_media_engine_is_layered():
    """The service shape (bootstrap, domain, handlers, adapters, entrypoints) for the media engine:
    the domain imports no adapter, handler or entrypoint, and no adapter imports a handler -- so
    the runner <-> SIPp driver cycle (the driver read the run state and metrics from the runner)
    cannot come back. Every module of the service but its package files, __main__ and the
    responder command's entry lives in one of the layers."""
    c = _contract("media-engine-layered")
    assert c["type"] == "layers" and c["containers"] == ["callgauge_media"]
    assert c["layers"] == ["entrypoints", "bootstrap", "handlers", "adapters", "domain", "settings"]
    pkg = ROOT / "services" / "media-engine" / "callgauge_media"
    outside = {p.name for p in pkg.iterdir() if p.name != "__pycache__" and p.name not in c["layers"]
               and p.name.removesuffix(".py") not in c["layers"]}
    assert outside == {"__init__.py", "__main__.py", "responder.py"}, outside
    sipp = _contract("media-sipp-driver-no-supervisor")
    assert sipp["source_modules"] == ["callgauge_media.adapters.sipp.driver"]
    assert sipp["forbidden_modules"] == ["callgauge_platform.stack"]


def test_the_gateway_layout_is_all_in_its_layers():
    """bootstrap.py, domain/, handlers/, adapters/ and entrypoints/ (and __main__, the process glue
    above them; settings.py, the service's settings class, below them): a new module of the gateway
    cannot sit outside the layered layout."""
    pkg = ROOT / "services" / "gateway" / "callgauge_gateway"
    layered = {name.strip() for layer in _contract("gateway-layers")["layers"] for name in layer.split("|")}
    present = {f"callgauge_gateway.{p.stem}" for p in pkg.iterdir()
               if p.stem not in ("__init__", "__main__", "__pycache__") and (p.suffix == ".py" or p.is_dir())}
    assert present == layered == {f"callgauge_gateway.{n}" for n in
                                  ("bootstrap", "domain", "handlers", "adapters", "entrypoints", "settings")}
