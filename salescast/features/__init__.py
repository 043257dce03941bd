"""From the sales store to model-ready series: the series frame, calendar and holiday features."""
