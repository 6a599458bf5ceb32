"""Running checks and turning results into state: scheduler, state machine, result pipeline,
heartbeats, flapping.
"""
