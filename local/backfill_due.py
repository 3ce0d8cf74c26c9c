"""File the missing due items of clocks opened before the due-items engine existed, on the
configured AWS endpoint (a one-off after deploying the engine over older data; `make run`
does it once per data directory by itself, `local/migrations.py`).

    python -m local.backfill_due [--endpoint-url URL] [--year 2026 ...] [--json]

The endpoint comes from --endpoint-url, else QPHB_AWS_ENDPOINT_URL or AWS_ENDPOINT_URL, else
AWS itself (the stage from the usual settings). Open clocks are read through their deadline-year
index, never scanned; running it again files nothing. Exit code: 0 done, 2 the store could not
be read or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from local.verify_audit import _configure


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint-url", help="AWS endpoint (default: settings, else AWS)")
    parser.add_argument("--year", type=int, action="append", help="deadline year (repeatable)")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    _configure(args.endpoint_url)
    try:
        from chalicelib.bootstrap import container
        from chalicelib.service_layer.due_backfill import BackfillDeps, backfill_clock_due_items

        report = backfill_clock_due_items(BackfillDeps.from_container(container()), args.year)
    except Exception as error:
        print(f"补登失败 / backfill failed: {type(error).__name__}: {error}", file=out)
        return 2
    summary = report.summary()
    if args.json:
        print(json.dumps(summary), file=out)
    else:
        print(
            f"检查在办计时 {summary['examined']} 个，补登到期项 {summary['filed']} 个，"
            f"已有 {summary['already_filed']} 个，无需提醒 {summary['nothing_due']} 个"
            f"（截止年份 {', '.join(map(str, summary['years']))}）",
            file=out,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
