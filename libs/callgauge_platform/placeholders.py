"""Refuse to start on a placeholder secret. The manifests in infra/ ship templates (`CHANGE-ME…`);
a deployment that forgot to replace one must not come up looking healthy with a secret everybody
knows (the JWT secret would let anyone mint login tokens, the bootstrap key opens the API)."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

from callgauge_platform.settings import CallgaugeSettings

# lower-cased markers of a value somebody was meant to replace
MARKERS = ("change-me", "changeme", "change_me", "replace-me", "replaceme", "replace_me", "placeholder",
           "your-secret", "your_secret", "<secret>", "xxxxxxxx", "insecure")
# values shipped as defaults by earlier infra/compose.yaml versions
KNOWN = frozenset({"callgauge", "postgres", "password", "secret"})
SECRETS = ("jwt_secret", "api_key", "secrets_key", "eventstore_url", "redis_url")


def is_placeholder(value: str) -> bool:
    low = value.strip().lower()
    return bool(low) and (low in KNOWN or any(m in low for m in MARKERS))


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


def placeholder_secrets(settings: CallgaugeSettings) -> list[str]:
    """The CALLGAUGE_* settings that hold a placeholder (for URLs: their password)."""
    found = []
    for name in SECRETS:
        value = str(getattr(settings, name, "") or "")
        if name.endswith("_url"):
            value = _url_password(value)
            if not value:
                continue
        if name == "secrets_key":
            if any(is_placeholder(k) for k in value.split(",")):
                found.append(name)
        elif name == "api_key":
            if is_placeholder(value) or is_placeholder(value.removeprefix("cgk_live_").removeprefix("cgk_test_")):
                found.append(name)
        elif is_placeholder(value):
            found.append(name)
    return found


def refuse_placeholders(settings: CallgaugeSettings, service: str) -> None:
    """Exit (status 2) with a message naming each placeholder setting."""
    found = placeholder_secrets(settings)
    if found:
        names = ", ".join(f"CALLGAUGE_{n.upper()}" for n in found)
        print(f"{service}: refusing to start: {names} still hold(s) a placeholder value from the manifests; "
              "set real secrets (see docs/security.md, 'Secrets')", file=sys.stderr, flush=True)
        raise SystemExit(2)
