"""Pharmacokinetics: what a ketamine regimen does in the body (PRODUCT step 5).

Exact, vectorised predictions with published models (``knowledge/data/pk_models.yaml``)::

    from ketapath import pk

    patient = pk.Covariates(weight_kg=72, age_years=45, sex="female", height_cm=165)
    regimen = pk.Regimen.daily(days=10, start_min_of_day=540, duration_min=240,
                               rate_mg_per_h=0.35 * 72)
    prediction = pk.predict("domino", patient, regimen, times_min=range(0, 14400, 5))
    prediction.summary(threshold_mg_per_l=0.1)

Concentrations are in mg/L (= ug/mL); multiply by 1000 for ng/mL.
"""

from __future__ import annotations

from ketapath.pk.errors import NoVariabilityError, PkError, PkInputError, UnknownModelError
from ketapath.pk.models import Parameters, PkModel, get_model, model_ids
from ketapath.pk.patient import Covariates, Sex
from ketapath.pk.regimen import Bolus, Infusion, Regimen
from ketapath.pk.simulate import (
    PopulationPrediction,
    Prediction,
    Summary,
    predict,
    predict_population,
)
from ketapath.pk.targeting import TargetScheme, target_concentration

__all__ = [
    "Bolus",
    "Covariates",
    "Infusion",
    "NoVariabilityError",
    "Parameters",
    "PkError",
    "PkInputError",
    "PkModel",
    "PopulationPrediction",
    "Prediction",
    "Regimen",
    "Sex",
    "Summary",
    "TargetScheme",
    "UnknownModelError",
    "get_model",
    "model_ids",
    "predict",
    "predict_population",
    "target_concentration",
]
