"""API routes: thin functions that validate, call one service and return a response."""
