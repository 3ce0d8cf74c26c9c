"""跨省通办 over HTTP: the partner regions' signed calls. No login: each call is signed with the
region's shared secret (Standard Webhooks headers over the exact body) and refused otherwise."""

from typing import Any, Literal

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    RuleViolation,
    Unauthenticated,
)
from chalicelib.entrypoints.http.applications import FieldInput, FieldName, MaterialBody, _materials
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel
from chalicelib.entrypoints.http.types import Text

bp = Blueprint(__name__)

_TAGS = ("cross-region",)
_REF = r"^[A-Za-z0-9_\-:.]{1,128}$"
Region = Literal["wujiang", "jiashan"]


class ResultBody(ApiModel):
    licence_number: str | None = Field(default=None, pattern=_REF, description="电子证照编号")
    mail_tracking_no: str | None = Field(default=None, pattern=_REF, description="邮寄运单号")


class CallbackBody(ApiModel):
    region: Region = Field(description="办理地")
    case_id: str = Field(pattern=_REF, description="青浦的办件编号")
    event: Literal["received", "accepted", "approved", "rejected"]
    remote_case_id: str | None = Field(default=None, pattern=_REF, description="办理地的办件编号")
    reasons: list[Text(500, min_length=1)] = Field(default=[], max_length=20)
    result: ResultBody | None = None


class ApplicantBody(ApiModel):
    name: Text(100, min_length=1)
    subject_id: str = Field(pattern=r"^[0-9A-Z]{15,18}$")


class InboundCaseBody(ApiModel):
    region: Region = Field(description="受理地")
    case_id: str = Field(pattern=_REF, description="受理地的办件编号")
    item_code: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    applicant: ApplicantBody
    fields: dict[FieldName, FieldInput] = Field(default={}, max_length=100)
    materials: list[MaterialBody] = Field(default=[], max_length=50)


class CaseStateView(ApiModel):
    application_id: str
    state: str
    remote_state: str | None = Field(default=None, description="另一地的办理环节")


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.crossregion import CrossRegionDeps

    return CrossRegionDeps.from_container(container())


def _raw() -> bytes:
    raw = bp.current_request.raw_body
    return raw if isinstance(raw, bytes) else (raw or "").encode()


def _view(app: Any) -> dict[str, Any]:
    return {
        "application_id": app.application_id,
        "state": app.state.value,
        "remote_state": (app.remote or {}).get("state"),
    }


@api_route(
    bp,
    "/cross-region/callbacks",
    method="POST",
    summary="跨省通办回调：办理地回传已接收、已受理、准予或不予（签名）",
    description="按 Standard Webhooks 签名（webhook-id、webhook-timestamp、webhook-signature）；"
    "同一回调重复发送不重复处理。",
    tags=_TAGS,
    body=CallbackBody,
    response=CaseStateView,
    public=True,
    errors=(InvalidInput, Unauthenticated, NotFound, Conflict, RuleViolation),
)
def cross_region_callback(call: Call):
    from chalicelib.service_layer.crossregion import Callback, receive_callback

    body: CallbackBody = call.body
    result = body.result or ResultBody()
    app = receive_callback(
        _deps(),
        call.headers,
        _raw(),
        Callback(
            region=body.region,
            case_id=body.case_id,
            event=body.event,
            remote_case_id=body.remote_case_id,
            reasons=tuple(body.reasons),
            licence_number=result.licence_number,
            mail_tracking_no=result.mail_tracking_no,
        ),
    )
    return _view(app)


@api_route(
    bp,
    "/cross-region/cases",
    method="POST",
    summary="跨省通办转入：受理地转来由青浦办理的办件（签名；202：进入智能预审）",
    description="同一受理地办件重复转入只生成一个办件；各办理环节回调受理地。",
    tags=_TAGS,
    body=InboundCaseBody,
    response=CaseStateView,
    status=202,
    public=True,
    errors=(InvalidInput, Unauthenticated, NotFound, Conflict, RuleViolation),
)
def cross_region_case(call: Call):
    from chalicelib.service_layer.crossregion import InboundCase, receive_case

    body: InboundCaseBody = call.body
    app = receive_case(
        _deps(),
        call.headers,
        _raw(),
        InboundCase(
            region=body.region,
            remote_case_id=body.case_id,
            item_code=body.item_code,
            applicant_name=body.applicant.name,
            subject_id=body.applicant.subject_id,
            fields=body.fields,
            materials=_materials(body.materials),
        ),
    )
    return _view(app)
