"""The public status page: components, incidents, maintenance, subscriptions."""
