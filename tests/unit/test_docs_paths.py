"""Every repository path the documentation names (`services/…`, `libs/…`, `apps/…`, `tests/…`, `scripts/…`,
`protos/…`, `infra/…` in README.md and docs/*.md) exists in the tree: a module that moves takes its
documentation with it, or this fails."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PATH = re.compile(r"(?<![\w./-])((?:services|libs|apps|tests|scripts|protos|infra)/[\w./-]*[\w/])")
PLACEHOLDER = re.compile(r"[*{}<>…]|\.\.\.")
# made by a command the docs tell you to run, not part of the tree (and ignored by git)
MADE_BY_HAND = {"infra/service-keys/"}


def named_paths(text: str) -> set[str]:
    """The paths named in a text, without globs and placeholders (`services/*`, `…/calls`)."""
    found = set()
    for m in PATH.finditer(text):
        after = text[m.end():m.end() + 1]
        if after and PLACEHOLDER.match(after):
            continue
        found.add(m.group(1).rstrip("."))
    return found


def test_the_pattern_finds_paths_and_skips_placeholders() -> None:
    text = ("`services/runs/callgauge_runs/domain/run.py`, (libs/callgauge_relay/relay.py). services/* "
            "`tests/contract/`: see libs/callgauge_bus/kafka.py. `services/x/{id}` rel/libs/nope.py")
    assert named_paths(text) == {"services/runs/callgauge_runs/domain/run.py",
                                 "libs/callgauge_relay/relay.py", "tests/contract/",
                                 "libs/callgauge_bus/kafka.py"}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_named_in_the_docs_exists(doc: Path) -> None:
    named = named_paths(doc.read_text()) - MADE_BY_HAND
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"{doc.relative_to(ROOT)} names paths that are not in the tree: {missing}"


def test_every_service_has_the_layout_the_architecture_page_describes() -> None:
    """docs/architecture.md says every service has the same layout (its bullets name each part):
    each package under services/ has every one of them."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("Every service has the same layout:", 1)[1].split("\n\n", 2)[1]
    parts = re.findall(r"^- `([\w.]+/?)`", section, re.M)
    assert {"bootstrap.py", "domain/", "handlers/", "adapters/", "entrypoints/"} <= set(parts), parts
    packages = sorted(p for p in (ROOT / "services").glob("*/callgauge_*") if p.is_dir())
    assert len(packages) == 5, packages
    missing = {str(pkg.relative_to(ROOT)): [part for part in parts if not (pkg / part.rstrip("/")).exists()]
               for pkg in packages}
    assert not any(missing.values()), f"services without the layout the page describes: {missing}"


DOTTED = re.compile(r"`(callgauge_[a-z_]+(?:\.[A-Za-z_]\w*)+)`")


def _resolves(name: str) -> bool:
    """`package.module.attribute…` names an importable module and, after it, existing attributes."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_module_named_in_the_docs_exists() -> None:
    """Dotted names in code spans (`callgauge_eventstore.aggregate.decide_and_append`) resolve."""
    named = {m.group(1): doc.relative_to(ROOT) for doc in DOCS for m in DOTTED.finditer(doc.read_text())}
    assert named, "the docs name no module"
    missing = {name: str(doc) for name, doc in named.items() if not _resolves(name)}
    assert not missing, f"the docs name modules or attributes that do not exist: {missing}"
