"""Regenerate libs/callgauge_proto from protos/ (python -m scripts.gen_protos or python scripts/gen_protos.py).

`--check` regenerates into a temporary folder and exits 1 when the committed code differs.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "callgauge_proto"
# protoc writes `from callgauge.x.v1 import y_pb2`; our package root is callgauge_proto.
_IMPORT = re.compile(r"^(from|import) callgauge\.", re.MULTILINE)


def generate(out: Path) -> None:
    from grpc_tools import protoc  # imported here: only this script needs grpcio-tools
    import grpc_tools

    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    raw = out / "_raw"
    raw.mkdir(parents=True)
    rc = protoc.main(
        ["protoc", f"-I{PROTOS}", f"-I{include}", f"--python_out={raw}", f"--pyi_out={raw}",
         f"--grpc_python_out={raw}", *files]
    )
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")
    pkg = out / "callgauge_proto"
    shutil.move(str(raw / "callgauge"), str(pkg / "callgauge"))
    shutil.rmtree(raw)
    for path in sorted(pkg.rglob("*")):
        if path.is_dir():
            (path / "__init__.py").touch()
        elif path.suffix in (".py", ".pyi"):
            text = _IMPORT.sub(r"\1 callgauge_proto.callgauge.", path.read_text())
            path.write_text(text)
    (pkg / "__init__.py").write_text('"""Generated protobuf and gRPC code. Do not edit: run scripts/gen_protos.py."""\n')


def _tree(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def diff(a: Path, b: Path) -> list[str]:
    ta, tb = _tree(a), _tree(b)
    out = sorted(set(ta) ^ set(tb))
    out += [k for k in sorted(set(ta) & set(tb)) if not filecmp.cmp(ta[k], tb[k], shallow=False)]
    return out


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "callgauge_proto").mkdir()
        generate(tmpdir)
        fresh = tmpdir / "callgauge_proto"
        if "--check" in argv:
            changed = diff(fresh, OUT)
            if changed:
                print("generated code is out of sync with protos/ — run python scripts/gen_protos.py:")
                print("\n".join(f"  {c}" for c in changed))
                return 1
            print("generated code is in sync")
            return 0
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(fresh, OUT)
        print(f"wrote {OUT.relative_to(ROOT)}")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
