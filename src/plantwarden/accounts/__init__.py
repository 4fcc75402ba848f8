"""Accounts: users, their role grants per site or zone, passwords, the second factor, throttled
logins, web sessions and API tokens."""
