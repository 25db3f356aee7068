"""Operations on a whole gateway installation: backing it up and restoring it."""
