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
    exposure_thresholds_file: str = Field(
        default="",
        description=(
            "A YAML file of the clinic's own reference concentrations for the exposure "
            "summaries' time above (docs/pk.md), replacing the packaged list. Empty: the "
            "packaged list."
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
            "practitioner holding the registration) and at the head of the letters. Empty: the "
            "reports and letters say it is not set."
        ),
    )
    clinic_address: str = Field(
        default="",
        max_length=500,
        description="The registrant's address on the controlled-drug reports and the letters.",
    )
    clinic_after_hours: str = Field(
        default="",
        max_length=500,
        description=(
            "The clinic's after-hours contact for patients after an infusion (a telephone "
            "number and who answers it), printed on every letter: the emergency plan after "
            "discharge. Empty: the letters say it is not recorded and must be written in by hand."
        ),
    )
    dea_registration: str = Field(
        default="",
        max_length=40,
        description=(
            "The clinic's DEA registration number, printed on the US controlled-drug reports. "
            "Empty: the reports print 'not set: KETAPATH_DEA_REGISTRATION'."
        ),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description=(
            "The address patients reach ketapath at (scheme, host, port, path prefix): the start "
            "of every diary link ketapath makes and e-mails. Set it to the clinic's public "
            "HTTPS address."
        ),
        max_length=500,
    )
    diary_writes_per_hour: int = Field(
        default=30,
        ge=1,
        le=10_000,
        description="How many diary entries one diary link may send per hour (then 429).",
    )
    diary_open_failures_per_hour: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description=(
            "How many refused diary link openings one client address may make per hour before "
            "it is refused outright (429)."
        ),
    )
    smtp_host: str = Field(
        default="",
        max_length=255,
        description="Mail server for diary links and reminders. Empty: ketapath sends no e-mail.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="Mail server port.")
    smtp_user: str = Field(default="", max_length=255, description="Mail server user name.")
    smtp_password: SecretStr = Field(default=SecretStr(""), description="Mail server password.")
    smtp_from: str = Field(
        default="", max_length=320, description="The sender address of the clinic's e-mails."
    )
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the mail connection with STARTTLS before sign-in."
    )

    @field_validator("public_url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) < 1:
            raise ValueError(f"{value!r} is not a web address; use e.g. https://clinic.example")
        return value

    @property
    def smtp_configured(self) -> bool:
        """Whether ketapath sends e-mail (a mail server and a sender address are set)."""
        return bool(self.smtp_host.strip() and self.smtp_from.strip())

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
