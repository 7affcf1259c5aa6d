"""Pure business rules: no I/O, no framework, no clock. Time and randomness are passed in."""
