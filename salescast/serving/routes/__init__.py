"""API routes: thin functions that validate, call one service and return a response.

Each router carries the full prefix itself, so a route's `path` is the URL template a client sees (the
metrics label requests by it).
"""

API_PREFIX = "/api/v1"
