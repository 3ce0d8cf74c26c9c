"""Write the OpenAPI document the app serves to a file (`make test` lints it and generates the
TypeScript types from it): `python -m local.export_openapi <path>`."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("用法：python -m local.export_openapi <输出文件>", file=sys.stderr)
        return 2
    from app import app
    from chalicelib.entrypoints.http.openapi import build_openapi

    target = Path(argv[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(build_openapi(app), ensure_ascii=False, indent=2, sort_keys=True)
    target.write_text(document + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
