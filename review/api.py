"""The JSON API (``/api/v1``; OpenAPI at ``/openapi.json``, described at ``/docs``).

Systems authenticate with ``Authorization: Bearer <token>`` (``badgewatch user token NAME``); a token
acts with its user's role and office scope until it expires or is revoked. Bad input is refused with a
4xx answer ``{"error": code, "detail": "中文说明"}`` saying what is wrong, and nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from reports.annual import TransitionError, derive, disagreements, submit
from reports.annual_report import report_dict
from review.accounts import MAX_ID, Principal
from review.console import DbId, Forbidden, api_principal, client_ip, console_of, db_session
from review.decisions import (
    DecisionError,
    basis_now,
    current_derived,
    decide,
    load_report,
    reports_in_scope,
    send_notices,
    suggested_reasons,
)
from review.evidence import reason_message
from storage.models import AnnualReport, Finding, Scan, Unit, Website

router = APIRouter(prefix="/api/v1", tags=["api"])
DB = Annotated[Session, Depends(db_session)]
FIRST_YEAR = 2013  # .政务/.公益 were delegated on 2013-12-12


def _anyone(request: Request, session: DB) -> Principal:
    who = api_principal(request, session)
    if who is None:
        raise Forbidden("需要有效的 API 令牌（Authorization: Bearer …）：令牌缺失、无效、已过期或已吊销", 401)
    return who


def _principal(who: Annotated[Principal, Depends(_anyone)]) -> Principal:
    if who.is_submitter:
        raise Forbidden("报告报送账号只能提交年度报告（POST /api/v1/annual-reports）")
    if not who.reviews:
        raise Forbidden("系统管理员的令牌不能访问年度报告和巡检数据")
    return who


def _submitter(who: Annotated[Principal, Depends(_anyone)]) -> Principal:
    if who.is_admin:
        raise Forbidden("系统管理员的令牌不能提交年度报告")
    return who


Who = Annotated[Principal, Depends(_principal)]
Anyone = Annotated[Principal, Depends(_anyone)]
Submitter = Annotated[Principal, Depends(_submitter)]


class SubmittedReport(BaseModel):
    """A unit's annual report: the unit (by id or USCC), the year, and the five fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="单位编号（与 uscc 二选一）")
    uscc: str | None = Field(default=None, max_length=18, description="统一社会信用代码")
    year: int = Field(ge=0, le=9999, description="报告年度")
    organizer: str = Field(max_length=200, description="(1) 开办主体名称")
    site_name: str = Field(default="", max_length=200, description="(2) 网站名称")
    domains_status: str = Field(max_length=2000, description="(3) 中文域名与英文域名的有效性及使用状况")
    functions_reviewed: str = Field(max_length=40, description="(4) 职能或业务范围是否经过审核")
    badge_displayed: str = Field(max_length=40, description="(5) 是否加挂网站标识")


class Decision(BaseModel):
    """A reviewer's decision on one version of a report (``version`` and ``basis`` as the report's
    GET returned them)."""

    model_config = ConfigDict(extra="forbid")

    decision: str = Field(pattern="^(approve|reject)$", description="approve 或 reject")
    version: int = Field(ge=1, le=2**31 - 1, description="所审核的报告版本（GET 返回的 version）")
    basis: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{16}$",
        description="所见巡检结果的摘要（GET 返回的 basis）；给出时，巡检结果有更新则拒绝（409）",
    )
    confirm_disagreements: bool = Field(
        default=False, description="填报与巡检结果不一致时审核通过，须为 true（已核对不一致之处）"
    )
    reason: str = Field(default="", max_length=2000, description="退回原因（reject 时必填）")


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _report_json(session: Session, report: AnnualReport) -> dict[str, Any]:
    """A report as the API shows it: with its version, and — while it waits for a decision — fields
    3 and 5 as the latest scans give them and the ``basis`` a decision names (read only)."""
    out = report_dict(report)
    out["version"] = report.version
    d3, d5 = current_derived(session, report)
    out["derived"] = {**out["derived"], "domains_status": d3, "badge_displayed": d5}
    out["disagreements"] = disagreements(report, d3, d5)
    out["suggested_reasons"] = suggested_reasons(out["disagreements"])
    out["basis"] = basis_now(session, report)
    return out


@router.get("/me", summary="当前令牌的用户与权限范围")
def me(who: Anyone) -> dict[str, Any]:
    return {
        "name": who.name,
        "role": who.role.value,
        "office_code": who.office_code,
        "offices": None if who.offices is None else sorted(who.offices),
    }


@router.post(
    "/annual-reports",
    status_code=201,
    summary="提交年度报告",
    responses={
        200: {"description": "重新提交或内容未变"},
        400: {"description": "JSON 无效"},
        404: {"description": "单位不存在或不在权限范围内"},
        409: {"description": "报告已审核，不能修改"},
        413: {"description": "请求过大"},
        422: {"description": "字段无效"},
    },
)
def submit_report(body: SubmittedReport, who: Submitter, session: DB, request: Request) -> JSONResponse:
    this_year = dt.date.today().year
    if not FIRST_YEAR <= body.year <= this_year:
        return _error(
            422, "invalid_year", f"报告年度 {body.year} 无效：应在 {FIRST_YEAR} 至 {this_year} 年之间"
        )
    if (body.unit_id is None) == (body.uscc is None):
        return _error(422, "invalid_unit", "请用 unit_id 或 uscc 之一指明单位（且只用一个）")
    if body.unit_id is not None:
        unit = session.get(Unit, body.unit_id)
        label = f"编号 {body.unit_id}"
    else:
        unit = session.scalars(sa.select(Unit).where(Unit.uscc == (body.uscc or "").upper())).first()
        label = f"统一社会信用代码 {body.uscc}"
    if unit is None or not who.may_submit_for(unit.office_code):
        return _error(404, "unknown_unit", f"单位（{label}）不存在或不在您的管辖范围内，未保存任何内容")
    if (
        not body.organizer
        or not body.domains_status
        or not body.functions_reviewed
        or not body.badge_displayed
    ):
        return _error(
            422,
            "missing_field",
            "字段 organizer、domains_status、functions_reviewed、badge_displayed 不能为空",
        )
    fields = body.model_dump(
        include={"organizer", "site_name", "domains_status", "functions_reviewed", "badge_displayed"}
    )
    try:
        report, what = submit(
            session,
            unit,
            body.year,
            fields,
            who.name,
            via="api",
            client=client_ip(request),
            user_id=who.user_id,
            role=who.role.value,
        )
        derive(session, report)
        session.commit()
    except TransitionError as exc:
        session.rollback()
        return _error(409, "already_reviewed", str(exc))
    out = report_dict(report)
    out["version"] = report.version
    out["result"] = what
    return JSONResponse(out, status_code=201 if what == "created" else 200)


@router.get("/annual-reports", summary="年度报告列表（权限范围内）")
def list_reports(
    who: Who,
    session: DB,
    year: Annotated[int | None, Query(ge=FIRST_YEAR, le=2100)] = None,
    state: Annotated[str | None, Query(pattern="^(submitted|office_approved|approved|rejected)$")] = None,
) -> dict[str, Any]:
    rows = reports_in_scope(session, who, year, state)
    out = []
    for r in rows:
        d = report_dict(r)
        d["version"] = r.version
        out.append(d)
    return {"reports": out}


@router.get("/annual-reports/{report_id}", summary="年度报告的状态、版本与巡检得出的字段3、5")
def get_report(report_id: DbId, who: Who, session: DB) -> JSONResponse:
    try:
        report = load_report(session, who, report_id)
    except DecisionError as exc:
        return _error(exc.status, "not_found", exc.message)
    return JSONResponse(_report_json(session, report))


@router.post(
    "/annual-reports/{report_id}/decision",
    summary="审核年度报告（编办一级、域名中心二级）",
    responses={
        400: {"description": "退回未填原因"},
        403: {"description": "无审核权限，或审核自己提交的报告"},
        404: {"description": "报告不存在或不在权限范围内"},
        409: {"description": "报告已被审核、已重新提交（版本不符）或巡检结果已更新"},
        422: {"description": "字段无效，或审核通过不一致的报告而未确认"},
    },
)
def decide_report(
    report_id: DbId,
    body: Decision,
    who: Who,
    session: DB,
    request: Request,
    background: BackgroundTasks,
) -> JSONResponse:
    c = console_of(request)
    try:
        outcome = decide(
            session,
            who,
            report_id,
            body.decision,
            body.reason,
            version=body.version,
            basis=body.basis,
            confirmed=body.confirm_disagreements,
            via="api",
            store=c.store,
            client=client_ip(request),
            cfg=c.cfg,
        )
    except DecisionError as exc:
        session.rollback()
        return _error(exc.status, exc.code, exc.message)
    if outcome.notifications:
        background.add_task(send_notices, c.engine, c.cfg, c.store, outcome.notifications)
    report = load_report(session, who, report_id)
    session.refresh(report)
    return JSONResponse(_report_json(session, report))


@router.get("/websites/{website_id}/findings", summary="网站的巡检发现")
def site_findings(
    website_id: DbId,
    who: Who,
    session: DB,
    scan_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JSONResponse:
    site = session.get(Website, website_id)
    if site is None or not who.sees_office(site.unit.office_code):
        return _error(404, "not_found", f"网站 {website_id} 不存在或不在您的管辖范围内")
    stmt = (
        sa.select(Finding, Scan).join(Scan, Scan.id == Finding.scan_id).where(Finding.website_id == site.id)
    )
    if scan_id is not None:
        stmt = stmt.where(Finding.scan_id == scan_id)
    rows = session.execute(stmt.order_by(Scan.started_at.desc(), Finding.id.desc()).limit(limit)).all()
    return JSONResponse(
        {
            "website": {"id": site.id, "name": site.name, "url": site.url, "unit_id": site.unit_id},
            "findings": [
                {
                    "id": f.id,
                    "scan_id": f.scan_id,
                    "scan_started": s.started_at.isoformat(),
                    "check": f.check,
                    "status": f.status,
                    "reason": f.reason,
                    "message": reason_message(f.reason),
                    "detail": f.detail,
                    "confirmed": f.confirmed,
                    "evidence": f.evidence,
                    "data": f.data,
                    "capture_id": f.capture_id,
                }
                for f, s in rows
            ],
        }
    )
