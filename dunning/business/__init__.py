"""Business case and rollout: ROI, pilot design and analysis, drift, plausibility, retraining.

Each module works on plain inputs (dataclasses, dicts of KPIs, DataFrames) so it can be used
from the CLI (``dunning/commands/business.py``), the HTML report and the recommendation
pipeline alike; the store and the payment model are only touched by thin loader functions.
"""
