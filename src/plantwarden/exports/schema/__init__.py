"""Schema files shipped with the package: the pinned OCSF subset and Plantwarden's OCSF extension.

See README.md in this folder for where each file comes from and how it was made.
"""
