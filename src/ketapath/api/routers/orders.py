"""Orders: the course a protocol gives for a patient (plans, not stored) and the physician's
signed orders (sign, list, read, confirm, cancel)."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.services import orders
from ketapath.services.orders import CoursePreview, OrderView, PlanRequest, SignRequest
from ketapath.services.signing import ConfirmRequest
from ketapath.services.validation import REASON_LENGTH

router = APIRouter(tags=["orders"], responses=SIGNED_IN)


class Cancellation(BaseModel):
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)


@router.post(
    "/patients/{patient_id}/plans",
    response_model=CoursePreview,
    summary="Compute the course a protocol gives for this patient (not stored)",
    responses=responses(400, 404, 422),
)
def preview_course(
    patient_id: RecordId, body: PlanRequest, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> CoursePreview:
    return orders.preview_course(db, actor, patient_id, body, clock=clock)


@router.post(
    "/patients/{patient_id}/orders",
    response_model=OrderView,
    status_code=status.HTTP_201_CREATED,
    summary="Sign a course (physician), with an override reason where findings need one",
    responses=responses(400, 404, 409, 422),
    description=(
        "Refused (422, field `consent`) while the record does not say consent was given. The "
        "facts the physician needs (weight and its date, allergies, laterality, pregnancy) "
        "are frozen into the order (`facts`)."
    ),
)
def sign_order(
    patient_id: RecordId, body: SignRequest, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> OrderView:
    return orders.sign_order(db, actor, patient_id, body, clock=clock)


@router.get(
    "/patients/{patient_id}/orders", response_model=list[OrderView], responses=responses(404, 422)
)
def list_orders(
    patient_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> list[OrderView]:
    return orders.list_orders(db, actor, patient_id, clock=clock)


@router.get(
    "/orders/{order_id}",
    response_model=OrderView,
    responses=responses(404, 422),
    summary="A signed order: its course, the facts frozen at signing, and whether it is usable",
    description=(
        "`state` is `usable`, `stale` (a dosing fact changed after signing: `stale_changes`, "
        "`stale_message`), `no_consent` or `cancelled`; `findings` say why, in words."
    ),
)
def get_order(
    order_id: RecordId, actor: CurrentUser, db: DatabaseDep, clock: ClockDep
) -> OrderView:
    return orders.get_order(db, actor, order_id, clock=clock)


@router.post(
    "/orders/{order_id}/confirmations",
    response_model=OrderView,
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 404, 409, 422),
    summary="Confirm a stale order at the record's current facts (physician), with a reason",
    description=(
        "A new row amends the order (who, when, why, at which record version); the order is "
        "not rewritten. 409 when the order is not stale, is cancelled, or the record is no "
        "longer at `patient_version`; 422 when its doses pass a hard limit at the new facts."
    ),
)
def confirm_order(
    order_id: RecordId,
    body: ConfirmRequest,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
) -> OrderView:
    return orders.confirm_order(db, actor, order_id, body, clock=clock)


@router.post(
    "/orders/{order_id}/cancel", response_model=OrderView, responses=responses(400, 404, 409, 422)
)
def cancel_order(
    order_id: RecordId, body: Cancellation, actor: CurrentUser, db: DatabaseDep
) -> OrderView:
    return orders.cancel_order(db, actor, order_id, reason=body.reason)
