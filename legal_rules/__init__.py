"""Declarative legal rules (YAML) compiled to durable_rules and a vectorised numpy evaluator."""
