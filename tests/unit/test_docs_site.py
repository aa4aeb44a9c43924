"""The documentation site (mkdocs.yml, docs/) builds with `mkdocs build --strict`: a broken link, a
missing anchor, a page left out of the navigation or a README snippet that is gone fails here, in
the test suite. The API reference page is rendered from the gateway's live OpenAPI document and the
settings reference from the settings class at build time (scripts/mkdocs_reference.py), and the
site loads nothing from another host (it works offline)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:
        pytest.fail("mkdocs is not installed in this environment: it is a dev dependency, "
                    "run `bash install.sh`")
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLGAUGE_")}
    env["NO_MKDOCS_2_WARNING"] = "1"
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{log[-6000:]}"
    assert not re.search(r"^WARNING", log, re.M), log[-6000:]
    return out


def test_every_page_is_built(site: Path) -> None:
    pages = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))
    assert pages, "docs/ has no pages"
    for page in pages:
        folder = page.parent if page.name == "index.md" else page.with_suffix("")
        built = site / folder / "index.html"
        assert built.is_file(), f"{page} was not built ({built})"


def test_the_api_reference_is_the_live_document(site: Path) -> None:
    from callgauge_gateway.bootstrap import bootstrap
    from callgauge_gateway.settings import GatewaySettings

    live = bootstrap(GatewaySettings()).openapi()
    assert json.loads((site / "reference" / "openapi.json").read_text()) == live
    page = (site / "reference" / "openapi" / "index.html").read_text()
    operations = [(m.upper(), path) for path, item in live["paths"].items() for m in item
                  if m in ("get", "put", "post", "patch", "delete")]
    assert len(operations) > 50
    missing = [f"{m} {p}" for m, p in operations if f"<code>{m} {p}</code>" not in page]
    assert not missing, f"operations missing from the API reference page: {missing}"
    for name in live["components"]["schemas"]:
        assert f'id="schema-{re.sub(r"[^A-Za-z0-9_-]", "-", name)}"' in page, name


def test_the_settings_reference_has_every_setting(site: Path) -> None:
    from callgauge_app.settings import PlatformSettings
    from callgauge_platform.settings import StackSettings

    page = (site / "reference" / "settings" / "index.html").read_text()
    names = set(PlatformSettings.model_fields) | set(StackSettings.model_fields)
    missing = [name for name in sorted(names) if f"<code>CALLGAUGE_{name.upper()}</code>" not in page]
    assert not missing, f"settings missing from the settings reference: {missing}"


def test_the_site_loads_nothing_from_another_host(site: Path) -> None:
    remote = re.compile(r'<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc="(?:https?:)?//'
                        r'|<link\b[^>]*\bhref="(?:https?:)?//[^"]*"[^>]*>|@import\s+url\((?:https?:)?//')
    found = {}
    for f in list(site.rglob("*.html")) + list(site.rglob("*.css")):
        hit = remote.search(f.read_text(errors="replace"))
        if hit:
            found[str(f.relative_to(site))] = hit.group(0)
    assert not found, found


def test_the_readme_starts_with_the_two_set_up_commands() -> None:
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", README.read_text(), re.S | re.M)
    assert [b.strip() for _, b in blocks[:2]] == ["bash install.sh && .venv/bin/callgauge demo",
                                                  "bash install.sh && .venv/bin/python -m pytest"]


def test_the_readme_links_point_into_the_tree() -> None:
    """mkdocs checks the links of the site; the README is not part of it, so its links are checked here."""
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links to no page"
    missing = [link for link in relative if not (ROOT / link).exists()]
    assert not missing, f"README links to paths that are not in the tree: {missing}"


def test_the_site_output_is_not_committed() -> None:
    assert "site/" in (ROOT / ".gitignore").read_text().split()
