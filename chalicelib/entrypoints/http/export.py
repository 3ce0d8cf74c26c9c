"""Reports as CSV: `format=csv` or `Accept: text/csv` on any report route.

UTF-8 with a BOM (Excel then reads the Chinese right), one header row of the columns' Chinese
labels (docs/glossary.md), one row per report row, CRLF line ends."""

import csv
import io
from typing import Any

from chalice import Response

from chalicelib.entrypoints.http.routing import Call

# The glossary's labels of report columns; a column without one is headed by its name.
LABELS = {
    "month": "月份",
    "department_id": "部门编号",
    "department_name": "部门名称",
    "centre_id": "中心编号",
    "centre_name": "中心名称",
    "item_code": "事项编码",
    "item_name": "事项名称",
    "kind": "类型",
    "received": "收件数",
    "contact_judged": "联系考核数",
    "contact_on_time": "按时联系数",
    "contact_on_time_rate": "按时联系率",
    "resolve_judged": "办结考核数",
    "resolve_on_time": "按时办结数",
    "resolve_on_time_rate": "按时办结率",
    "overdue": "超期数",
    "escalations": "督办次数",
    "reported": "通报次数",
    "call_backs": "回访数",
    "satisfied": "满意数",
    "satisfaction_rate": "满意率",
    "call_back_judged": "回访考核数",
    "call_back_on_time_rate": "按时回访率",
    "reopened": "重新办理数",
    "transferred_out": "转出数",
    "return_requests": "退单申请数",
    "on_time_rate": "按时率",
    "applications": "申请数",
    "prefill_rate": "预填率",
    "prereview_automation_rate": "预审自动化率",
    "first_submission_success_rate": "首办成功率",
    "online_completion_rate": "网上办结率",
    "p90_processing_working_days": "P90办理时长（工作日）",
}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(call: Call, format_: str | None) -> bool:
    return format_ == "csv" or "text/csv" in call.headers.get("accept", "")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a cell starting like a formula would run as one in a spreadsheet
    return str(value)


def csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([LABELS.get(name, name) for name in columns])
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return Response(
        body="\ufeff" + buffer.getvalue(),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
