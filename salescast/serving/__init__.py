"""Serving: the forecast API: what answers a request, and the write-behind log of what was answered.

Request serving, in the order a request meets it: `body_limit` and `middleware` (request id, security
headers, metrics, access log), `fast_path` (cached answers before FastAPI parses anything), `security`
with `auth` and `rate_limit` (who calls and how often), `routing` (which model version answers: the
traffic plan), `serve_forecast` with `cache`, `queries`, `rankings` and `models` (the answer: stored
forecasts or a live what-if), `problems` (one error shape), and `routes/` (the thin HTTP functions).
`app` builds the application, `state` holds what a server process keeps for its lifetime, `server`
runs it. `prediction_log/` stores every answer off the request path: it is kept apart because its
concerns (batches, backoff, a bounded buffer) are the database's, not the caller's.
"""
