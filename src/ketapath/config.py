"""Settings of the clinic system, read from ``KETAPATH_*`` environment variables.

Nothing here is clinical: clinical numbers live in the knowledge base. These are the
operational knobs (where the database is, how long a session lasts, when an account locks).
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///ketapath.sqlite3"


class Settings(BaseSettings):
    """Operational settings; every field can be set as ``KETAPATH_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="KETAPATH_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "SQLAlchemy URL. Default: a SQLite file in the working directory. PostgreSQL: "
            "postgresql+psycopg://user@host:5432/dbname"
        ),
    )
    secret_key: SecretStr = Field(
        default_factory=lambda: SecretStr(secrets.token_urlsafe(32)),
        description=(
            "Signs session cookies and CSRF tokens. When unset a random key is made at start, "
            "so web sessions do not survive a restart; set it for a clinic deployment."
        ),
        min_length=16,
    )
    lockout_threshold: int = Field(
        default=5, ge=1, description="Failed sign-ins within the window that lock an account."
    )
    lockout_window_min: int = Field(
        default=15, ge=1, description="Window (minutes) for counting failures; also lock time."
    )
    api_token_ttl_hours: float = Field(default=12.0, gt=0, description="Bearer token lifetime.")
    session_ttl_hours: float = Field(default=12.0, gt=0, description="Web session lifetime.")
    cookie_secure: bool = Field(
        default=True,
        description=(
            "Send the session cookie only over HTTPS. Browsers treat http://localhost and "
            "http://127.0.0.1 as secure, so the laptop demo works with the default."
        ),
    )
    session_cookie_name: str = "ketapath_session"
    sql_echo: bool = False
    vital_thresholds_file: str = Field(
        default="",
        description=(
            "A YAML file of the clinic's own vital-sign alert thresholds (docs/sessions.md), "
            "replacing the packaged clinic-policy defaults vital by vital. Empty: the defaults."
        ),
        max_length=4096,
    )
    timezone: str = Field(
        default="",
        description=(
            "The clinic's time zone (IANA name, e.g. Europe/London) in which pages show times "
            "and read times typed into forms. Empty: the server's own zone. Stored times are "
            "always UTC."
        ),
    )

    clinic_name: str = Field(
        default="",
        max_length=200,
        description=(
            "The registrant's name printed on the controlled-drug reports (the clinic or the "
            "practitioner holding the registration). Empty: the reports say it is not set."
        ),
    )
    clinic_address: str = Field(
        default="",
        max_length=500,
        description="The registrant's address printed on the controlled-drug reports.",
    )
    dea_registration: str = Field(
        default="",
        max_length=40,
        description=(
            "The clinic's DEA registration number, printed on the US controlled-drug reports. "
            "Empty: the reports print 'not set: KETAPATH_DEA_REGISTRATION'."
        ),
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(
                    f"unknown time zone {value!r}; use an IANA name such as Europe/London"
                ) from error
        return value

    def zone(self) -> ZoneInfo | None:
        """The clinic's time zone, or None for the server's own."""
        return ZoneInfo(self.timezone) if self.timezone else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
