"""The import graph (issue #19 item 7): libraries are layered, so no two libraries import each
other, and no library imports a service. The contracts live in pyproject.toml
([tool.importlinter]); import-linter checks them over the static import graph (direct and
indirect imports). Known exceptions are listed there with a comment."""

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


def _services() -> set[str]:
    return {
        p.name for p in (ROOT / "services").glob("*/callgauge_*") if (p / "__init__.py").exists()
    }


def test_every_library_and_service_is_in_the_contracts():
    """A new library or service cannot slip past the contracts by not being listed."""
    libs, services = _libraries(), _services()
    assert libs and services
    layered = {
        name.strip() for layer in _contract("libs-layered")["layers"] for name in layer.split("|")
    }
    assert layered == libs
    forbidden = _contract("libs-not-services")
    assert set(forbidden["source_modules"]) == libs
    assert set(forbidden["forbidden_modules"]) == services
    assert set(_config()["root_packages"]) == libs | services


def test_the_known_exceptions_are_only_the_legacy_cli():
    """The only edges let through are callgauge_platform.cli's (issue #19 item 6, listed)."""
    for cid in ("libs-layered", "libs-not-services"):
        for edge in _contract(cid).get("ignore_imports", []):
            assert edge.startswith("callgauge_platform.cli -> "), edge


def test_import_contracts_are_kept(capsys):
    code = cli.lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 kept, 0 broken" in out, out
