"""Authentication and authorisation: users, browser sessions, API tokens, roles, audit.

- `passwords`: argon2id hashing.
- `users`, `tokens`, `sessions`: the three kinds of stored credentials.
- `throttle`: failed-login limits per account and per client address.
- `roles`: the Role order and the FastAPI dependencies every route declares (`require`).
- `audit`: the audit log of every write, and the middleware that records it.
"""
