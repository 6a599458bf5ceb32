"""Automatic recovery (issue #17): supervised programs, actions, storm guards, breakers.

`config` (the `recovery:` section), `actions` (one module per type behind `ACTIONS`),
`supervisor` (the `process` type), `guard` (attempt windows, cooldowns, lock-outs,
concurrency), `breaker` (`CircuitBreaker` for application code), and `coordinator`
(`Recovery`: what the running service does when a check with `recovery:` is DOWN).
"""
