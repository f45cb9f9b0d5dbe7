"""Schema of ``exposure_thresholds.yaml``: the concentrations an exposure summary's time above
is measured against, each with its analyte, its meaning and its source.

A clinic may replace the packaged list with its own file of the same format
(``KETAPATH_EXPOSURE_THRESHOLDS_FILE``, :func:`load_exposure_thresholds`); it is validated the
same way, and every citation must be in the bibliography.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    KnowledgeFile,
    cites_in,
    load_entries,
    read_yaml,
)
from ketapath.knowledge.bibliography import bibliography

EXPOSURE_THRESHOLDS_FILE = "exposure_thresholds.yaml"
ThresholdAnalyte = Literal["racemic ketamine", "S-ketamine", "norketamine"]
# An upper bound no plasma concentration of a clinical (or any survivable) ketamine dose
# reaches: anaesthetic concentrations are ~1,000-3,000 ng/mL. It catches a unit slip (mg/L
# typed as ng/mL the wrong way round), not a clinical choice.
MAX_THRESHOLD_NG_PER_ML = 100_000.0


class ExposureThreshold(Entry):
    """One reference concentration of one analyte."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    name: str = Field(min_length=3, max_length=80)
    analyte: ThresholdAnalyte
    concentration_ng_per_ml: float = Field(gt=0, le=MAX_THRESHOLD_NG_PER_ML, allow_inf_nan=False)
    basis: Literal["published", "policy"] = Field(
        description="published: a concentration studied in a cited paper; policy: a local choice."
    )
    meaning: str = Field(min_length=10, max_length=2000)

    @property
    def concentration_mg_per_l(self) -> float:
        return self.concentration_ng_per_ml / 1000.0


class ExposureThresholdsFile(KnowledgeFile[ExposureThreshold]):
    """The envelope, with the checks across entries."""

    @model_validator(mode="after")
    def _distinct(self) -> ExposureThresholdsFile:
        seen = [(e.analyte, e.concentration_ng_per_ml) for e in self.entries]
        if len(seen) != len(set(seen)):
            raise ValueError("two thresholds of one analyte at the same concentration")
        if len(self.entries) > 12:
            raise ValueError("at most 12 thresholds (each is a time-above figure per session)")
        return self

    def digest(self) -> str:
        """SHA-256 of the thresholds as used (id, analyte, concentration): a stored summary
        computed against other thresholds is recomputed."""
        used = [
            [e.id, e.analyte, e.concentration_ng_per_ml]
            for e in sorted(self.entries, key=lambda e: e.id)
        ]
        text = json.dumps({"version": self.version, "thresholds": used}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=8)
def load_exposure_thresholds(path: str = "") -> ExposureThresholdsFile:
    """The packaged thresholds, or a clinic's own file (``path``) in their place.

    ``KnowledgeError`` names the file and what is wrong (not YAML, a field out of the schema,
    a citation not in the bibliography).
    """
    if not path:
        parsed: Any = load_entries(
            EXPOSURE_THRESHOLDS_FILE,
            ExposureThreshold,
            kind="exposure_thresholds",
            file_model=ExposureThresholdsFile,
        )
        where = EXPOSURE_THRESHOLDS_FILE
    else:
        data = read_yaml(Path(path))
        try:
            parsed = ExposureThresholdsFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
            )
            raise KnowledgeError(f"{path}: {problems}") from exc
        if parsed.kind != "exposure_thresholds":
            raise KnowledgeError(f"{path}: kind is {parsed.kind!r}, expected 'exposure_thresholds'")
        ids = [e.id for e in parsed.entries]
        if len(ids) != len(set(ids)):
            raise KnowledgeError(f"{path}: two thresholds share an id")
        where = path
    bibliography().check(cites_in(parsed), where)
    thresholds: ExposureThresholdsFile = parsed
    return thresholds
