"""The dispatcher's stages, each a small unit with its own tests (tests/alerting/).

`alerting.dispatcher.Dispatcher` runs them, in the order of its `_handle`, for each alert of
a pass: expiry (`resolution.Expiry`) → resolution notice (`resolution.Resolution`) →
suppression (`suppression`: dependency, flapping, maintenance, inhibition, then silences on
their own) → grouping (`grouping`) → first page per group (`first_page`) → acknowledgement
notice (`resolution`) or escalation and repeat (`escalation`). Every notification goes
through the storm guard (`storm`) into the outbox. `context.Pass` carries what one pass
collects as it goes: when to wake next and which objects it found broken.
"""
