"""Backtests, accuracy metrics and the promotion gate."""
