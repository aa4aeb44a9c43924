"""docs/security.md (#15 "Also") stays true: it has the threat model, the four trust boundaries, a
secrets table that says where each secret lives and how to rotate it, and the production checklist;
and every CALLGAUGE_* setting it names is a real setting (a renamed or removed setting fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from callgauge_app.settings import PlatformSettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_security_doc_has_its_parts() -> None:
    text = DOC.read_text()
    headings = set(re.findall(r"^##+ (.+)$", text, re.MULTILINE))
    for needed in ("Threat model", "Trust boundaries", "Secrets", "Production checklist"):
        assert needed in headings, needed
    for boundary in ("public REST", "internal gRPC", "Kafka", "SIP/RTP egress"):
        assert re.search(rf"^\| {re.escape(boundary)}", text, re.MULTILINE), boundary
    assert "| secret | protects | where it lives | rotate |" in text


def test_every_setting_it_names_exists() -> None:
    fields = {f"CALLGAUGE_{name.upper()}" for name in PlatformSettings.model_fields}
    named = set(re.findall(r"CALLGAUGE_[A-Z0-9_]*[A-Z0-9]\b", DOC.read_text()))
    assert named and not named - fields, sorted(named - fields)
