"""Exports of Plantwarden's data in standard formats (OCSF), checked against schemas shipped with it."""
