"""Serving: the forecast API and what every request uses (routing, cache, keys, rate limits)."""
