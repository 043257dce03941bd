"""salescast: forecast product sales and run the forecasting models in production."""

__version__ = "0.1.0"
