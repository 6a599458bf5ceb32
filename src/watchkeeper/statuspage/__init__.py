"""Public status pages: components derived from checks, incidents, scheduled maintenance,
the in-memory snapshots they are served from, Statuspage v2 JSON, feeds and badges.

Sits between `config` (which reads its section, `statuspage.config`) and `engine`: it reads
check states, maintenance windows and the store, and is driven by `services` and `http`.
"""
