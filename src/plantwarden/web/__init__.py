"""The server: JSON API under /api/v1, the server-rendered console, health and readiness."""
