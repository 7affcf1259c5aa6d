"""Analytics on numbers the store has already aggregated: pure functions, no I/O, no clock."""
