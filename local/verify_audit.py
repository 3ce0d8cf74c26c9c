"""Verify the audit hash chains on the configured AWS endpoint and print one line per chain.

    python -m local.verify_audit [--chain ticket] [--endpoint-url URL] [--json]

The endpoint comes from --endpoint-url, else QPHB_AWS_ENDPOINT_URL or AWS_ENDPOINT_URL (the
embedded AWS of `make run`), else AWS itself. Each chain's links, its head's signature and
its last seal are checked (the seals of `make run` are in DATA_DIR). Exit code: 0 all intact,
1 a chain is broken, 2 the store could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from typing import Any, TextIO

_COLUMNS = (
    ("链 Chain", "chain"),
    ("结果 Result", "result"),
    ("已校验 Checked", "records_checked"),
    ("首个断点 First broken", "first_broken_seq"),
    ("原因 Reason", "reason"),
)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    _configure(args.endpoint_url)
    try:
        results = _verify(args.chain)
    except Exception as error:
        print(
            f"无法读取审计链 / cannot read the audit chains: {type(error).__name__}: {error}",
            file=out,
        )
        return 2
    if args.json:
        print(json.dumps([_as_dict(r) for r in results], ensure_ascii=False, indent=2), file=out)
    else:
        print(render_table(results), file=out)
    broken = [r for r in results if not r.ok]
    summary = (
        f"{len(broken)} 条链断裂 / {len(broken)} chain(s) broken"
        if broken
        else f"全部 {len(results)} 条链完整 / all {len(results)} chain(s) intact"
    )
    print(summary, file=out)
    return 1 if broken else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.verify_audit",
        description="校验审计哈希链 / verify the audit hash chains",
    )
    parser.add_argument("--chain", help="只校验这条链 / verify this chain only")
    parser.add_argument("--endpoint-url", help="AWS endpoint (e.g. the embedded AWS)")
    parser.add_argument("--json", action="store_true", help="JSON output")
    return parser


def _configure(endpoint_url: str | None) -> None:
    # The runner's seals are in its data directory (DATA_DIR, as `make run` has it).
    if not os.environ.get("QPHB_AUDIT_SEAL_PATH"):
        data_dir = os.environ.get("DATA_DIR") or ".data"
        os.environ["QPHB_AUDIT_SEAL_PATH"] = os.path.join(data_dir, "audit-seals.jsonl")
    # Before any model is imported: PynamoDB models bind their endpoint at import.
    if endpoint_url:
        os.environ["QPHB_AWS_ENDPOINT_URL"] = endpoint_url
        from chalicelib.settings import reset_settings_cache

        reset_settings_cache()
    if os.environ.get("QPHB_AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL"):
        # The embedded AWS accepts any credentials; real AWS uses the caller's own.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")


def _verify(chain: str | None) -> list[Any]:
    from chalicelib.bootstrap import container

    return container().audit_log.verify(chain)


def _as_dict(result: Any) -> dict[str, Any]:
    return {
        "chain": result.chain,
        "ok": result.ok,
        "records_checked": result.records_checked,
        "first_broken_seq": result.first_broken_seq,
        "code": result.code.value,
        "reason": result.reason,
        "head_seq": result.head_seq,
    }


def render_table(results: list[Any]) -> str:
    if not results:
        return "没有审计链 / no audit chains yet"
    rows = [[title for title, _ in _COLUMNS]]
    for result in results:
        values = _as_dict(result)
        values["result"] = "完整 ok" if result.ok else f"断裂 BROKEN ({result.code.value})"
        values["first_broken_seq"] = (
            "-" if result.first_broken_seq is None else str(result.first_broken_seq)
        )
        rows.append([str(values[key]) for _, key in _COLUMNS])
    widths = [max(_width(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(_pad(cell, w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


if __name__ == "__main__":
    # The table is the report; the service's JSON log lines would only interleave with it.
    os.environ.setdefault("QPHB_LOG_LEVEL", "CRITICAL")
    sys.exit(main())
