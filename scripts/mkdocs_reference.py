"""MkDocs hook: the reference pages rendered from the code when the site is built.

- The API reference: the gateway's FastAPI application is created (nothing is started: no
  lifespan, no connection) and its OpenAPI document becomes `reference/openapi.json`, the document
  itself, and `reference/openapi.md`, every operation (by tag) and every schema as Markdown.
- The settings reference, `reference/settings.md`: every `CALLGAUGE_*` variable each service's
  settings class reads, with its type, default, shared part and description.

Nothing is written into docs/, so the pages can never be stale or committed by mistake.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mkdocs.structure.files import File, Files

PAGE = "reference/openapi.md"
SETTINGS_PAGE = "reference/settings.md"
DOCUMENT = "reference/openapi.json"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def openapi_document() -> dict[str, Any]:
    """The gateway's OpenAPI document, as `GET /api/v1/openapi.json` serves it."""
    from callgauge_gateway.bootstrap import bootstrap
    from callgauge_gateway.settings import GatewaySettings

    return bootstrap(GatewaySettings()).openapi()


def _escape_html(text: str) -> str:
    """`<` and `>` escaped outside code spans (inside them Markdown shows them as they are)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts) if len(parts) % 2 else text.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: Any) -> str:
    """One Markdown table cell: one line, pipes escaped, no raw HTML."""
    s = " ".join(str(text or "").split())
    return _escape_html(s.replace("\\", "\\\\").replace("|", "\\|"))


def _text(text: str | None) -> str:
    """A description as a paragraph: raw HTML escaped, Markdown kept."""
    return _escape_html((text or "").strip())


def _schema_id(name: str) -> str:
    return "schema-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _type(schema: dict[str, Any] | None) -> str:
    """A schema in a few words, references linked to their section of the page."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_schema_id(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            parts = [_type(s) for s in schema[key]]
            return (" or " if key != "allOf" else " and ").join(dict.fromkeys(parts))
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {_type(schema.get('items'))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    fmt = schema.get("format")
    return f"{kind} ({fmt})" if fmt else kind


def _response_row(status: str, r: dict[str, Any]) -> str:
    content = r.get("content") or {}
    kinds = ", ".join(f"`{ct}`: {_type(c.get('schema'))}" for ct, c in content.items())
    return f"| {status} | {_cell(r.get('description'))} | {_cell(kinds)} |"


def common_responses(operations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The error answers (4xx, 5xx, default) that most operations document alike: said once at the
    top of the page; an operation lists only its own (a different description is its own)."""
    counts: dict[str, int] = {}
    seen: dict[str, dict[str, Any]] = {}
    for op in operations:
        for status, r in (op.get("responses") or {}).items():
            if status.startswith(("1", "2", "3")):
                continue
            key = json.dumps([status, r], sort_keys=True)
            counts[key] = counts.get(key, 0) + 1
            seen[key] = r
    common = {}
    for key, n in counts.items():
        status = json.loads(key)[0]
        if n * 2 > len(operations) and status not in common:
            common[status] = seen[key]
    return dict(sorted(common.items(), key=lambda kv: (kv[0] == "default", kv[0])))


def _operation(method: str, path: str, op: dict[str, Any], common: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        out += [f"**{_text(op['summary'])}**", ""]
    if op.get("description"):
        out += [_text(op["description"]), ""]
    params = op.get("parameters") or []
    if params:
        out += ["| parameter | in | required | type | description |", "|---|---|---|---|---|"]
        for p in params:
            out.append(f"| `{p['name']}` | {p.get('in', '')} | {'yes' if p.get('required') else 'no'} | "
                       f"{_cell(_type(p.get('schema')))} | {_cell(p.get('description'))} |")
        out.append("")
    body = op.get("requestBody")
    if body:
        kinds = ", ".join(f"`{ct}`: {_type(c.get('schema'))}" for ct, c in body.get("content", {}).items())
        out += [f"Request body{' (required)' if body.get('required') else ''}: {kinds}", ""]
    responses = {s: r for s, r in (op.get("responses") or {}).items() if common.get(s) != r}
    if responses:
        out += ["| status | description | body |", "|---|---|---|"]
        out += [_response_row(status, r) for status, r in responses.items()]
        out.append("")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name} {{#{_schema_id(name)}}}", ""]
    if schema.get("description"):
        out += [_text(schema["description"]), ""]
    props = schema.get("properties") or {}
    if props:
        required = set(schema.get("required") or ())
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, s in props.items():
            out.append(f"| `{field}` | {_cell(_type(s))} | {'yes' if field in required else 'no'} | "
                       f"{_cell(s.get('description') or s.get('title'))} |")
        out.append("")
    elif "properties" not in schema:
        out += [f"{_type({k: v for k, v in schema.items() if k not in ('title', 'description')})}", ""]
    return out


def render(doc: dict[str, Any]) -> str:
    """The whole reference page for one OpenAPI document."""
    info = doc.get("info", {})
    out = [
        "# API reference", "",
        f"{_text(info.get('title'))} {info.get('version', '')}, OpenAPI {doc.get('openapi', '')}. "
        "Generated from the gateway's own document when this site was built; a running gateway serves "
        "the same at `/api/v1/openapi.json` and as Swagger UI at `/api/docs`. "
        "[The document itself](openapi.json).", "",
    ]
    if info.get("description"):
        out += [_text(info["description"]), ""]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    common = common_responses([op for ops in by_tag.values() for _, _, op in ops])
    if common:
        out += ["The error answers most operations document, said once here (an operation lists those it "
                "documents otherwise), all in the error envelope:", "",
                "| status | description | body |", "|---|---|---|"]
        out += [_response_row(status, r) for status, r in common.items()]
        out.append("")
    for tag, ops in by_tag.items():
        out += [f"## {tag}", ""]
        for method, path, op in ops:
            out += _operation(method, path, op, common)
    schemas = doc.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## Schemas", ""]
        for name, schema in schemas.items():
            out += _schema(name, schema)
    return "\n".join(out) + "\n"


def _settings_table(cls: Any) -> list[str]:
    """One row per field of a settings class: variable, type, default, the part it comes from."""
    prefix = cls.model_config.get("env_prefix", "")
    out = ["| variable | type | default | part | what it sets |", "|---|---|---|---|---|"]
    for name, field in cls.model_fields.items():
        default = field.default
        if isinstance(default, bool):
            shown = "`true`" if default else "`false`"
        elif default in ("", None):
            shown = "(empty)"
        else:
            shown = f"`{default}`"
        kind = getattr(field.annotation, "__name__", str(field.annotation))
        part = next(c.__name__ for c in cls.__mro__ if name in getattr(c, "__annotations__", {}))
        out.append(f"| `{prefix}{name.upper()}` | {_cell(kind)} | {_cell(shown)} | {_cell(part)} | "
                   f"{_cell(field.description or '')} |")
    return out


def settings_page() -> str:
    """Each service's settings class, every field a row (callgauge_app.settings.SERVICE_SETTINGS), and
    what `callgauge up` reads itself (StackSettings)."""
    from callgauge_app.settings import SERVICE_SETTINGS
    from callgauge_platform.settings import StackSettings

    out = ["# Settings reference", "",
           "Every setting is an environment variable. Each service reads its own settings class "
           "(`callgauge_<service>/settings.py`), which composes shared parts of "
           "`libs/callgauge_platform/settings.py` (the *part* column) with its own fields: a service's "
           "table is exactly what it reads. Generated from those classes when this site was built; "
           "[configuration](../configuration.md) says which matter most. `callgauge up` builds every "
           "service's settings from one environment before it starts anything and hands each its own.", ""]
    for service, cls in SERVICE_SETTINGS.items():
        out += [f"## {service}", "", f"`{cls.__module__}.{cls.__name__}`", "", *_settings_table(cls), ""]
    out += ["## callgauge up", "",
            "What the one-machine supervisor reads itself (`callgauge_platform.settings.StackSettings`): "
            "the address of every part, so it can check each is free and wait until each is ready.", "",
            *_settings_table(StackSettings)]
    return "\n".join(out) + "\n"


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, SETTINGS_PAGE, content=settings_page()))
    doc = openapi_document()
    files.append(File.generated(config, DOCUMENT, content=json.dumps(doc, indent=2)))
    files.append(File.generated(config, PAGE, content=render(doc)))
    return files
