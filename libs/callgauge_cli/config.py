"""Where the CLI finds the gateway and its key: flags, then CALLGAUGE_URL / CALLGAUGE_API_KEY,
then the config file `callgauge login` writes ($CALLGAUGE_CONFIG, else
$XDG_CONFIG_HOME/callgauge/config.json, else ~/.config/callgauge/config.json; mode 0600)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from callgauge_client._base import DEFAULT_URL


def config_path() -> Path:
    if p := os.environ.get("CALLGAUGE_CONFIG"):
        return Path(p)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "callgauge" / "config.json"


@dataclass
class Config:
    url: str = ""
    api_key: str = ""
    project: str = ""
    refresh_token: str = ""  # from `login --email`: lets `keys create` get an access token (rotates)

    @classmethod
    def load(cls) -> Config:
        path = config_path()
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path} is not a JSON object")
        return cls(**{k: str(v) for k, v in raw.items() if k in ("url", "api_key", "project", "refresh_token")})

    def save(self) -> Path:
        path = config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)
        return path


class ConfigError(Exception):
    pass


def resolve(url: str | None, api_key: str | None) -> tuple[str, str, Config]:
    """(url, key, file config): flag, then environment, then the file, then the default URL."""
    cfg = Config.load()
    return (url or os.environ.get("CALLGAUGE_URL") or cfg.url or DEFAULT_URL,
            api_key or os.environ.get("CALLGAUGE_API_KEY") or cfg.api_key, cfg)
