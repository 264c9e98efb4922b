"""Names of the planner's saved files (imported without the planner itself, e.g. by the
daily run's policy loader to tell a planner directory from an RL one)."""

PLANNER_FILE = "planner.json"
PLANNER_SCHEMA = "dunning.planner/1"
