"""Pure dissectors, one subpackage per protocol: bytes in, records and findings out; no I/O and no
import from the rest of Plantwarden."""
