"""What a shown code (亮证亮码) costs: its length for a QR and the time to sign and verify it, as
a ratio to the HMAC tokens the platform already signs (measured in the same run).

Pure, in-process: the Ed25519 signer of shown codes (`adapters/presentation_keys.py`) and the
HMAC signer (`adapters/signing.py`) with the same key set; one disclosed field and all six
fields of a licence. Best of `--runs` rounds of `--count` operations each. Prints a table, then,
as the last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ONE = {
    "jti": "a" * 32,
    "knd": "licence",
    "iat": 1796000000,
    "exp": 1796000300,
    "dsc": {"holder_name": "上海绿境科技有限公司"},
}
SIX = {
    **ONE,
    "dsc": {
        "type": "business_licence",
        "number": "91310118MA1JL0000N",
        "holder_name": "上海绿境科技有限公司",
        "holder_id": "91310118MA1JL0000N",
        "valid_from": "2019-04-18",
        "valid_until": None,
    },
}


def per_second(operation: Callable[[], object], count: int, runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(count):
            operation()
        best = max(best, count / (time.perf_counter() - started))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from chalicelib.adapters.presentation_keys import Ed25519PresentationSigner
    from chalicelib.adapters.signing import Signer, SigningKeys

    keys = SigningKeys("k1", {"k1": b"k" * 32})
    ed, hmac = Ed25519PresentationSigner(keys), Signer(keys)
    expires, now = datetime(2030, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)
    code, token = ed.sign(ONE), hmac.sign("bench", ONE, expires)
    figures = {
        "code_chars_one_field": len(code),
        "code_chars_six_fields": len(ed.sign(SIX)),
        "hmac_token_chars_one_field": len(token),
        "ed25519_sign_per_s": per_second(lambda: ed.sign(ONE), args.count, args.runs),
        "ed25519_verify_per_s": per_second(lambda: ed.claims_of(code), args.count, args.runs),
        "hmac_sign_per_s": per_second(
            lambda: hmac.sign("bench", ONE, expires), args.count, args.runs
        ),
        "hmac_verify_per_s": per_second(
            lambda: hmac.verify("bench", token, now), args.count, args.runs
        ),
    }
    figures["verify_ratio_to_hmac"] = figures["ed25519_verify_per_s"] / figures["hmac_verify_per_s"]
    figures["sign_ratio_to_hmac"] = figures["ed25519_sign_per_s"] / figures["hmac_sign_per_s"]
    for name, value in figures.items():
        print(f"{name:28} {value:12.3f}" if isinstance(value, float) else f"{name:28} {value:12}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
