"""Operations: today's recommendations, the human-review queue, letters and the audit chain."""
