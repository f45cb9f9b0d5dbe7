"""The controlled-drug ledger's reports for the regulators (issue 11), as JSON, CSV or PDF.

- ``GET /ledger/reports/us-inventory?on=&time=opening|close``: the DEA inventory;
- ``GET /ledger/reports/us-records?from=&to=``: the DEA dispensing records of a date range;
- ``GET /ledger/reports/uk-register?product_id=``: a UK controlled drugs register page.

``format=json`` (the default) answers the typed report; ``csv`` and ``pdf`` answer a download
with its file name. A pharmacist or a physician reads them; each reading is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from ketapath.api.deps import CurrentUser, DatabaseDep, SettingsDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.reports import ledger as rendering
from ketapath.services import ledger_reports
from ketapath.services.ledger_reports import Report, UkRegister, UsInventory, UsRecords

router = APIRouter(prefix="/ledger/reports", tags=["controlled-drug ledger"], responses=SIGNED_IN)

Format = Annotated[
    Literal["json", "csv", "pdf"],
    Query(description="json (the typed report), csv or pdf (a download)."),
]
DOWNLOADS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}, "application/pdf": {}},
        "description": "The report (JSON), or with format=csv or pdf a download.",
    }
}


def _answer(report: Report, fmt: str) -> Response:
    if fmt == "json":
        return Response(report.model_dump_json(), media_type="application/json")
    return Response(
        rendering.render(report, fmt),
        media_type=rendering.media_type(fmt),
        headers={
            "Content-Disposition": f'attachment; filename="{rendering.filename(report, fmt)}"'
        },
    )


@router.get(
    "/us-inventory",
    response_model=UsInventory,
    summary="The DEA inventory (21 CFR 1304.11) at the opening or close of a clinic date",
    responses={**responses(403, 422), **DOWNLOADS},
)
def us_inventory(
    actor: CurrentUser,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    on: Annotated[date, Query(description="The clinic date of the inventory, YYYY-MM-DD.")],
    time: Annotated[
        Literal["opening", "close"], Query(description="Taken at the opening or the close.")
    ] = "close",
    format: Format = "json",
) -> Response:
    report = ledger_reports.us_inventory(db, actor, on, time, clock=clock, settings=settings)
    return _answer(report, format)


@router.get(
    "/us-records",
    response_model=UsRecords,
    summary="The DEA dispensing records (21 CFR 1304.22(c)) of a range of clinic dates",
    responses={**responses(403, 422), **DOWNLOADS},
)
def us_records(
    actor: CurrentUser,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    date_from: Annotated[
        date, Query(alias="from", description="The first clinic date, YYYY-MM-DD.")
    ],
    date_to: Annotated[
        date,
        Query(alias="to", description="The last clinic date (included), at most two years on."),
    ],
    format: Format = "json",
) -> Response:
    report = ledger_reports.us_records(
        db, actor, date_from, date_to, clock=clock, settings=settings
    )
    return _answer(report, format)


@router.get(
    "/uk-register",
    response_model=UkRegister,
    summary="A UK controlled drugs register page (MDR 2001 reg. 19-20) for one product",
    responses={**responses(403, 404, 422), **DOWNLOADS},
)
def uk_register(
    actor: CurrentUser,
    db: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    product_id: Annotated[RecordId, Query(description="The product's id in the ledger.")],
    format: Format = "json",
) -> Response:
    report = ledger_reports.uk_register(db, actor, product_id, clock=clock, settings=settings)
    return _answer(report, format)
