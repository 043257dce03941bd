"""The serving layer: read queries, live what-if forecasts and the API around them."""
