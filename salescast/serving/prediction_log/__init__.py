"""The write-behind prediction log: every served or shadow-computed forecast, stored off the request path.

A request only appends a record to an in-memory buffer (`writer.PredictionLogWriter.log`); a background
thread takes the buffer in batches and has them inserted (`inserters.py`), by default in a child process
so that encoding and inserting rows costs the serving process no CPU. It lives apart from the request
path because its concerns are the database's, not the caller's: batching, backoff through an outage, a
bounded buffer that drops (and counts) the oldest rows rather than grow or slow an answer. The rollout
judge and live accuracy read what it stores.
"""
