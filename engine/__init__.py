"""dunning.engine: data contract, validation, store, features, payment models, recommendations."""

__version__ = "0.1.0"
