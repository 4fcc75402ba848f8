"""Devices and their end-to-end telemetry: the sealed envelope (COSE), the replay window per device,
and (above them) ingestion from MQTT and the device agent."""
