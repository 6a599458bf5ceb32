"""Objects managed over the API (checks, escalation policies, rules), merged with the config
file's.
"""
