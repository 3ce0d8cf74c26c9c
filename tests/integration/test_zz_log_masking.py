"""No log line carries an unmasked ID number or mobile number.

`log_capture` (tests/integration/conftest.py) keeps every line the integration suite logs,
metric (EMF) lines included, each formatted by its own logger's formatter, from the session's
start. Whatever order the tests run in, every line is checked: the tests here check the lines
so far, and the capture fixture checks, at the end of the session, every line not yet checked.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib.domain.personal_data import id_number_check_char

ID_NUMBER = "310118198503121233"  # u-citizen-zhang (seed data)
ID_NUMBER_X = "11010519491231002X"
MOBILE = "13812345678"
MIN_LINES = 3
ROOT = Path(__file__).resolve().parents[2]

_ID_RUN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")


def _texts(line: str) -> Iterator[str]:
    """The raw line, and every key and string value in it once JSON-decoded (what a reader
    of the log sees: escapes such as \\n resolved)."""
    yield line
    try:
        stack = [json.loads(line)]
    except ValueError:
        return
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from (str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        else:
            yield str(item)


def personal_data_in(line: str) -> list[str]:
    found = []
    for text in _texts(line):
        for match in _ID_RUN.finditer(text):
            value = match.group().upper()
            if id_number_check_char(value[:17]) == value[17]:
                found.append(value)
        found.extend(match.group() for match in _MOBILE.finditer(text))
    return found


def assert_no_personal_data(lines: list[str]) -> None:
    leaks = [(line, personal_data_in(line)) for line in lines]
    leaks = [(line[:300], found) for line, found in leaks if found]
    assert not leaks, f"unmasked personal data in {len(leaks)} log line(s): {leaks[:5]}"


def test_the_detector_finds_what_it_is_meant_to_find():
    assert personal_data_in(f'{{"message":"x {ID_NUMBER}"}}') == [ID_NUMBER, ID_NUMBER]
    assert personal_data_in('{"message":"电话\\n13812345678"}') == [MOBILE]
    assert personal_data_in('{"message":"ts 1764129600000 310118********1233"}') == []


@contextmanager
def emitted_lines(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Redirect the Powertools handler's stream: what is written there is what the service
    emits."""
    from chalicelib.observability import logger

    stream = io.StringIO()
    previous_level = logger.log_level
    old_stream = logger.registered_handler.setStream(stream)
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.registered_handler.setStream(old_stream)
        logger.setLevel(previous_level)


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.strip()]


def test_the_service_logger_masks_message_extra_keys_and_exceptions():
    from chalicelib.observability import MaskingFormatter, logger

    assert isinstance(logger.registered_formatter, MaskingFormatter)
    with emitted_lines() as stream:
        logger.info(
            f"申请人 {ID_NUMBER} 电话 {MOBILE}",
            extra={
                "id_number": ID_NUMBER_X,
                "mobile": MOBILE,
                "applicant": {"contacts": [f"+86 {MOBILE}"], "note": f"证件\n{ID_NUMBER}"},
            },
        )
        try:
            raise ValueError(f"身份证号 {ID_NUMBER} 手机 {MOBILE} 校验失败")
        except ValueError:
            logger.exception("处理失败")
    lines = _lines(stream)
    assert len(lines) == 2
    info, error = (json.loads(line) for line in lines)
    assert info["message"] == "申请人 310118********1233 电话 138****5678"
    assert info["id_number"] == "110105********002X"
    assert info["mobile"] == "138****5678"
    assert info["applicant"] == {
        "contacts": ["+86 138****5678"],
        "note": "证件\n310118********1233",
    }
    assert "310118********1233" in error["exception"]
    assert error["exception_name"] == "ValueError"
    for line in lines:
        assert ID_NUMBER not in line and MOBILE not in line and ID_NUMBER_X not in line
        assert personal_data_in(line) == []


def test_appended_keys_are_masked_too():
    from chalicelib.observability import logger

    with emitted_lines() as stream:
        logger.append_keys(subject_id=ID_NUMBER)
        try:
            logger.warning("subject bound")
        finally:
            logger.remove_keys(["subject_id"])
    (line,) = _lines(stream)
    assert json.loads(line)["subject_id"] == "310118********1233"


def test_chalice_own_error_log_is_masked():
    """A view failing outside api_route is logged by Chalice itself, through app.log."""
    from chalice.test import Client

    from app import app

    path = "/zz-probe/{value}"
    assert path not in app.routes

    def zz_probe(value):
        raise RuntimeError(f"证件 {value} 手机 {MOBILE}")

    # A raw Chalice route on the shared app, removed again: no api_route safety net.
    app.route(path)(zz_probe)
    try:
        with emitted_lines() as stream, Client(app) as client:
            response = client.http.get(f"/zz-probe/{ID_NUMBER}")
    finally:
        del app.routes[path]
    assert response.status_code == 500
    assert json.loads(response.body)["code"] == "internal_error"
    assert ID_NUMBER not in response.body.decode()
    lines = _lines(stream)
    assert any("Caught exception" in line for line in lines), lines
    assert any("310118********1233" in line for line in lines), lines
    for line in lines:
        assert personal_data_in(line) == [], line


def test_importing_app_keeps_the_configured_log_level():
    """Chalice's log setup and its debug setter act on app.log, which is the service logger:
    building the app must not silence the INFO lines (a Lambda imports app once, so check a
    fresh interpreter)."""
    script = (
        "import logging, app; from chalicelib.observability import logger; "
        "print(logging.getLevelName(logger.log_level))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "QPHB_LOG_LEVEL": "INFO"},
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "INFO"


def test_requests_carrying_personal_data_log_it_masked(api, log_capture):
    """Drive a few requests whose logs would carry personal data if anything leaked."""
    start = len(log_capture.lines)
    headers = {"X-Correlation-Id": f"corr-{MOBILE}"}
    api.get("/me", token=f"x.{ID_NUMBER}.y", headers=headers)
    api.post("/dev/tokens", {"user_id": ID_NUMBER}, headers=headers)
    api.post("/dev/tokens", raw=f'{{"user_id": {MOBILE}, "mobile": "{MOBILE}"}}')
    api.get("/me", user="u-citizen-zhang", headers=headers)
    new = log_capture.lines[start:]
    assert len(new) >= MIN_LINES, new
    assert any("138****5678" in line for line in new), new
    assert_no_personal_data(new)


def test_metric_lines_are_masked_like_every_other_line(log_capture, capsys):
    from chalicelib.observability import emit_metric, metrics

    start = len(log_capture.lines)
    emit_metric("ZzProbe", consumer=f"probe {MOBILE}")
    metrics.add_metric(name="ZzProbeFlushed", unit="Count", value=1)
    metrics.add_metadata(key="subject", value=ID_NUMBER)
    metrics.flush_metrics()
    written = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    captured = [line for line in log_capture.lines[start:] if '"_aws"' in line]
    assert len(written) == 2 and captured == written
    single, flushed = (json.loads(line) for line in written)
    assert single["consumer"] == "probe 138****5678" and single["ZzProbe"] == [1.0]
    assert flushed["subject"] == "310118********1233"
    assert_no_personal_data(written)


def test_metric_lines_carry_no_correlation_id_of_any_request(log_capture, capsys):
    """One Metrics object serves every thread: a request's id must not ride on the metrics
    another request flushes."""
    import threading

    from chalicelib.observability import metrics, set_correlation_id

    def request(correlation_id: str) -> None:
        set_correlation_id(correlation_id)
        metrics.add_metric(name="ZzRequest", unit="Count", value=1)

    threads = [threading.Thread(target=request, args=(f"corr-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.flush_metrics()
    (line,) = [x for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert "corr-" not in line and "correlation_id" not in json.loads(line)


def test_zz_no_unmasked_personal_data_in_any_captured_log_line(log_capture):
    """Every line captured so far, whatever ran before; later lines are checked at the end of
    the session by the capture fixture."""
    from chalicelib.observability import MaskingFormatter, logger

    assert isinstance(log_capture.formatter, MaskingFormatter)
    logger.info(f"self-check {ID_NUMBER} {MOBILE}")  # this test's own line: never zero lines
    lines = list(log_capture.lines)
    assert any("310118********1233 138****5678" in line for line in lines)
    log_capture.checked = len(lines)
    assert_no_personal_data(lines)
