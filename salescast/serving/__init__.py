"""Serving: the forecast API's building blocks (response cache, rate limiter, …)."""
