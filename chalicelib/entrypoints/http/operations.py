"""12345 and the operations report over HTTP: the signed calls 12345 makes (work orders, call
transfers to a department's specialist), the transfers' answer rates, and the monthly report
of every plan target (JSON, or CSV with format=csv or Accept: text/csv)."""

from typing import Any, Literal

from chalice import Blueprint, Response
from pydantic import ConfigDict, Field

from chalicelib.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Moment, Text

bp = Blueprint(__name__)

_TAGS = ("operations",)
_ID = r"^[A-Za-z0-9\-]{4,64}$"
_SIGNED = (
    "12345 平台以 Standard Webhooks 方式签名（webhook-id、webhook-timestamp、webhook-signature，"
    "密钥与本系统推送给 12345 的回调相同），签名不符或时间戳超出5分钟答复401。"
)


class _Input(ApiModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")


def _hotline() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.hotline import HotlineDeps

    return HotlineDeps.from_container(container())


def _operations() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.operations import OperationsDeps

    return OperationsDeps.from_container(container())


def _raw_body() -> bytes:
    raw = bp.current_request.raw_body or b""
    return raw if isinstance(raw, bytes) else raw.encode()


class WorkOrderIn(_Input):
    order_no: str = Field(pattern=_ID, description="12345 工单编号（幂等：同一编号只建一张工单）")
    received_at: Moment = Field(description="12345 受理来电的时间")
    description: Text(2000, min_length=2, multiline=True) = Field(description="诉求内容")
    caller_name: Text(50, min_length=1) = Field(description="来电人姓名")
    caller_mobile: str = Field(pattern=r"^1\d{10}$", description="来电人手机号码")
    caller_id_number: str | None = Field(
        default=None, pattern=r"^[0-9A-Za-z]{15,18}$", description="来电人证件号码（如有）"
    )
    item_code: str | None = Field(default=None, pattern=r"^[A-Za-z0-9\-]{1,64}$")
    contact_days: int | None = Field(default=None, ge=1, le=60, description="联系时限（工作日）")
    resolve_days: int | None = Field(default=None, ge=1, le=60, description="办结时限（工作日）")


class WorkOrderView(ApiModel):
    order_no: str
    ticket_id: str
    created: bool = Field(description="false：重复推送，答复首次建立的工单")


class TransferIn(_Input):
    transfer_id: str = Field(pattern=_ID, description="转接记录编号（幂等）")
    department_id: str = Field(pattern=r"^[A-Za-z0-9\-]{1,64}$", description="转接的部门专席")
    offered_at: Moment = Field(description="转接发起时间")
    outcome: Literal["answered", "missed"] = Field(description="answered 接通；missed 未接通")
    answered_at: Moment | None = Field(default=None, description="接通时间（接通时必填）")
    order_no: str | None = Field(default=None, pattern=_ID)


class TransferView(ApiModel):
    transfer_id: str
    department_id: str
    offered_at: str
    outcome: Literal["answered", "missed"]
    answered_at: str | None = None
    order_no: str | None = None
    created: bool


class MonthQuery(ApiModel):
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    format: Literal["json", "csv"] = Field(
        default="json", description="csv：下载表格（亦可 Accept: text/csv）"
    )


class AnswerRow(ApiModel):
    department_id: str = Field(description="部门编号；* 为全部")
    department_name: str | None = None
    offered: int
    answered: int
    missed: int
    answer_rate: float | None
    target: float
    met: bool | None


class AnswerReport(ApiModel):
    month: str
    overall: AnswerRow
    departments: list[AnswerRow]


class FigureView(ApiModel):
    key: str = Field(description="指标编号；按部门或团队的指标为 <编号>:<部门>")
    name: str
    value: float | None = Field(description="本月数值；本月无数据为 null")
    target: float
    unit: Literal["ratio", "seconds", "minutes"]
    met: bool | None = Field(description="是否达标：比率不低于目标、时长不高于目标")


class OperationsReport(ApiModel):
    month: str
    figures: list[FigureView]
    final: bool = Field(description="true：月度定时任务已生成并保存；false：截至当前计算")
    built_at: str


@api_route(
    bp,
    "/integrations/12345/work-orders",
    method="POST",
    summary="（12345 平台）推送工单：按工单编号建立办不成事工单，时限按工作日计算",
    description=_SIGNED,
    tags=_TAGS,
    body=WorkOrderIn,
    response=WorkOrderView,
    status=201,
    public=True,
    errors=(Unauthenticated, InvalidInput),
)
def receive_work_order(call: Call):
    from chalicelib.service_layer.hotline import receive_work_order as receive

    body: WorkOrderIn = call.body
    ticket_id, created = receive(_hotline(), call.headers, _raw_body(), body.model_dump())
    return WorkOrderView(order_no=body.order_no, ticket_id=ticket_id, created=created)


@api_route(
    bp,
    "/integrations/12345/transfers",
    method="POST",
    summary="（12345 平台）三方转接记录：转接至部门专席，接通或未接通",
    description=_SIGNED,
    tags=_TAGS,
    body=TransferIn,
    response=TransferView,
    status=201,
    public=True,
    errors=(Unauthenticated, InvalidInput, Conflict),
)
def receive_transfer(call: Call):
    from chalicelib.service_layer.hotline import receive_transfer as receive

    transfer, created = receive(_hotline(), call.headers, _raw_body(), call.body.model_dump())
    return TransferView(**transfer.to_dict(), created=created)


@api_route(
    bp,
    "/reports/hotline-transfers",
    summary="12345 转接专席接通率（按部门，目标90%）；format=csv 或 Accept: text/csv 下载表格",
    tags=_TAGS,
    query=MonthQuery,
    response=AnswerReport,
    errors=(InvalidInput, Forbidden, NotFound),
)
def hotline_transfers(call: Call):
    from chalicelib.entrypoints.http.export import csv_response, wants_csv
    from chalicelib.service_layer.hotline import answer_report

    deps = _hotline()
    total, rows = answer_report(deps, call.user, call.query.month)

    def row(rate: Any) -> dict[str, Any]:
        found = deps.directory.get_department(rate.department_id)
        return {**rate.to_dict(), "department_name": found.name if found else None}

    departments = [row(r) for r in rows]
    if wants_csv(call, call.query.format):
        columns = [*AnswerRow.model_fields]
        lines = [{"month": call.query.month, **r} for r in [*departments, row(total)]]
        return csv_response(lines, ["month", *columns], f"hotline-{call.query.month}.csv")
    return AnswerReport.model_validate(
        {"month": call.query.month, "overall": row(total), "departments": departments}
    )


@api_route(
    bp,
    "/reports/operations",
    summary="一网通办运行月报：各项目标与本月实际值（预填、预审、首办成功、网上办结、好差评、"
    "1/5/15、帮办、12345、等候与办理时长）；format=csv 或 Accept: text/csv 下载表格",
    tags=_TAGS,
    query=MonthQuery,
    response=OperationsReport,
    errors=(InvalidInput, Forbidden, NotFound),
)
def operations_report(call: Call):
    from chalicelib.entrypoints.http.export import wants_csv
    from chalicelib.service_layer.operations import read_report, report_csv

    report = read_report(_operations(), call.user, call.query.month)
    if wants_csv(call, call.query.format):
        return Response(
            body=report_csv(report),
            status_code=200,
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": (
                    f'attachment; filename="operations-{call.query.month}.csv"'
                ),
            },
        )
    return OperationsReport.model_validate(report)
