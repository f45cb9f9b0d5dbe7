"""A demo clinic: one user per role with a fresh random password, and a few patients.

For trying the system on a laptop (``ketapath serve --demo``); never for real patients.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ketapath.services import auth, patients
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store.db import Database

DEMO_PATIENTS: tuple[dict[str, Any], ...] = (
    {
        "name": "Jordan Demo",
        "birth_date": "1968-02-14",
        "sex": "female",
        "weight_kg": 72.0,
        "height_cm": 168.0,
        "diagnoses": ["crps-1"],
        "medications": [
            {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
            {"name": "pregabalin", "dose": 150, "unit": "mg", "frequency": "bd", "route": "oral"},
        ],
    },
    {
        "name": "Casey Sample",
        "birth_date": "1955-09-03",
        "sex": "male",
        "weight_kg": 88.0,
        "height_cm": 181.0,
        "diagnoses": ["phantom-limb"],
        "medications": [
            {"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd", "route": "oral"}
        ],
    },
    {
        "name": "Riley Testcase",
        "birth_date": "1979-06-21",
        "sex": "female",
        "weight_kg": 61.0,
        "height_cm": 160.0,
        "diagnoses": ["sci-pain"],
        "medications": [],
    },
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str


def seed_demo(db: Database) -> list[DemoUser]:
    """Create the demo users (user name = role) and patients; returns the passwords."""
    created = []
    for role in ROLES:
        password = secrets.token_urlsafe(9)
        auth.add_user(db, SYSTEM, role, role, password, full_name=f"Demo {role}")
        created.append(DemoUser(role, role, password))
    nurse = next(u for u in auth.list_users(db, SYSTEM) if u.role == "nurse")
    actor = Actor(nurse.id, nurse.username, nurse.role)
    for document in DEMO_PATIENTS:
        patients.create_patient(db, actor, document)
    return created
