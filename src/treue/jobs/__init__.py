"""Scheduled and background work: expiry, scheduled rules (birthday, anniversary, cron), outbox dispatch. Run by `treue jobs run` or `treue serve`."""
