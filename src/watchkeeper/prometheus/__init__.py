"""What Prometheus scrapes: the per-check collector and the service's own metrics."""
