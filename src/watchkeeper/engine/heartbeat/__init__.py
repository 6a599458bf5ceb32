"""Push checks: the monitored job pings us; silence past its deadline is the failure."""
