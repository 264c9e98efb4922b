"""Scheduling policies behind one interface: ``act(observations, masks) -> actions``."""
