"""The HTTP face: app factory, the edge middleware, the API and the dashboard."""
