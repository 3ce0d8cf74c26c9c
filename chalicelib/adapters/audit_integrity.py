"""What makes the audit chains tamper-evident: a head signer whose key the tables do not hold,
and a seal store the application cannot rewrite.

Signers: `KmsHeadSigner` (a KMS HMAC key: GenerateMac / VerifyMac; the key never leaves KMS)
in AWS, `HmacHeadSigner` (the local signing secret from the settings) locally.
Seal stores: `S3SealStore` (a bucket with Object Lock in compliance mode; the application role
may only PutObject) in AWS, `FileSealStore` (an append-only JSON-lines file) locally.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
from typing import Any, Protocol

from chalicelib.domain.audit import SealedHead, head_message


class HeadSigner(Protocol):
    def sign(self, chain: str, last_seq: int, last_hash: str) -> str: ...

    def verify(self, chain: str, last_seq: int, last_hash: str, signature: str | None) -> bool: ...


class HmacHeadSigner:
    def __init__(self, secret: str):
        self._key = secret.encode("utf-8")

    def sign(self, chain: str, last_seq: int, last_hash: str) -> str:
        mac = hmac.new(self._key, head_message(chain, last_seq, last_hash), hashlib.sha256)
        return mac.hexdigest()

    def verify(self, chain: str, last_seq: int, last_hash: str, signature: str | None) -> bool:
        return bool(signature) and hmac.compare_digest(
            self.sign(chain, last_seq, last_hash), signature or ""
        )


class KmsHeadSigner:
    """HMAC_SHA_256 with a KMS key (key spec HMAC_256): the application may use the key, never
    read it, so whoever can write the tables still cannot forge a head."""

    def __init__(self, kms_client: Any, key_id: str):
        self._kms = kms_client
        self._key_id = key_id

    def sign(self, chain: str, last_seq: int, last_hash: str) -> str:
        response = self._kms.generate_mac(
            KeyId=self._key_id,
            MacAlgorithm="HMAC_SHA_256",
            Message=head_message(chain, last_seq, last_hash),
        )
        return base64.b64encode(response["Mac"]).decode("ascii")

    def verify(self, chain: str, last_seq: int, last_hash: str, signature: str | None) -> bool:
        if not signature:
            return False
        try:
            response = self._kms.verify_mac(
                KeyId=self._key_id,
                MacAlgorithm="HMAC_SHA_256",
                Message=head_message(chain, last_seq, last_hash),
                Mac=base64.b64decode(signature),
            )
        except self._kms.exceptions.KMSInvalidMacException:
            return False
        return bool(response.get("MacValid"))


class SealStore(Protocol):
    def append(self, seal: dict[str, Any]) -> None: ...

    def latest(self) -> dict[str, SealedHead]: ...


def seal_document(sealed_at: str, heads: list[SealedHead]) -> dict[str, Any]:
    return {
        "sealed_at": sealed_at,
        "chains": {h.chain: {"last_seq": h.last_seq, "last_hash": h.last_hash} for h in heads},
    }


def _heads_of(document: dict[str, Any]) -> dict[str, SealedHead]:
    return {
        chain: SealedHead(chain, int(value["last_seq"]), str(value["last_hash"]))
        for chain, value in (document.get("chains") or {}).items()
    }


class FileSealStore:
    """Local stand-in for the locked bucket: one JSON line per seal, only ever appended."""

    def __init__(self, path: str):
        self._path = path
        self._lock = threading.Lock()

    def append(self, seal: dict[str, Any]) -> None:
        directory = os.path.dirname(self._path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        line = json.dumps(seal, ensure_ascii=False, sort_keys=True)
        with self._lock, open(self._path, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    def latest(self) -> dict[str, SealedHead]:
        try:
            with open(self._path, encoding="utf-8") as source:
                lines = [line for line in source if line.strip()]
        except FileNotFoundError:
            return {}
        return _heads_of(json.loads(lines[-1])) if lines else {}


class S3SealStore:
    """Seals as objects `seals/<sealed_at>.json` in a bucket with Object Lock (compliance
    retention): once written, nobody (the application least of all) can overwrite or delete
    them before the retention ends. Keys sort by time, so the latest is the last listed."""

    PREFIX = "seals/"

    def __init__(self, s3_client: Any, bucket: str):
        self._s3 = s3_client
        self._bucket = bucket

    def append(self, seal: dict[str, Any]) -> None:
        body = json.dumps(seal, ensure_ascii=False, sort_keys=True).encode("utf-8")
        self._s3.put_object(
            Bucket=self._bucket,
            Key=f"{self.PREFIX}{seal['sealed_at']}.json",
            Body=body,
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )

    def latest(self) -> dict[str, SealedHead]:
        last_key = None
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=self.PREFIX):
            for item in page.get("Contents", []):
                last_key = item["Key"]
        if last_key is None:
            return {}
        body = self._s3.get_object(Bucket=self._bucket, Key=last_key)["Body"].read()
        return _heads_of(json.loads(body))
