"""Alerts: the one alert entity every detector raises through `services.raise_alert`."""
