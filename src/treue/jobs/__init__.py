"""Scheduled and background work: expiry, outbox dispatch. Run by `treue jobs run` or `treue serve`."""
