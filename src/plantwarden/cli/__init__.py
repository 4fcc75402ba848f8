"""The `plantwarden` command: the root of every process and the place every package is mounted."""
