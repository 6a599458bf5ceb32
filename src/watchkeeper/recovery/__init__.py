"""Automatic recovery (issue #17): supervised programs, actions, storm guards, breakers.

Foundations only, not yet wired into the config loader, the runtime or the API:
`config` (the `recovery:` section), `actions` (one module per type behind `ACTIONS`),
`supervisor` (the `process` type), `guard` (attempt windows, cooldowns, lock-outs,
concurrency), `breaker` (`CircuitBreaker` for application code).
"""
