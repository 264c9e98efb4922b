"""Payment-probability model, daily hazard model, baselines and their evaluation.

>>> from engine.models import PaymentModel, HazardModel
"""

from engine.models.hazard import HazardModel
from engine.models.payment import PaymentModel, select_features

__all__ = ["HazardModel", "PaymentModel", "select_features"]
