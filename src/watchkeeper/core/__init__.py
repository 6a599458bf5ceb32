"""Domain values and plumbing every layer shares: clock, durations, redaction, logs, the timed
loop, the change feed.
"""
