"""Errors of the capture layer: unreadable capture files and streams, and live capture refused.

A reader that meets a problem first yields every complete packet before it, then raises one of
these; the message names the source, the byte offset and how many packets were read, and the same
facts are in `details` (`source`, `offset`, `packets`).
"""

from __future__ import annotations

from plantwarden.core.errors import InvalidInput, NotFound, PlantwardenError


class CaptureError(InvalidInput):
    """A capture file or stream cannot be read (further)."""

    code = "capture_error"


class NotACapture(CaptureError):
    """The input starts with neither a pcap nor a pcapng magic number."""

    code = "not_a_capture"


class CaptureTruncated(CaptureError):
    """The input ends inside a file header, a record or a block."""

    code = "capture_truncated"


class CaptureCorrupt(CaptureError):
    """A header, record or block is impossible (a length out of range, an unknown interface...)."""

    code = "capture_corrupt"


class LiveCaptureError(PlantwardenError):
    """Live capture cannot start or go on (no privilege, unsupported interface, ring setup)."""

    code = "live_capture_error"


class LiveCaptureNotPermitted(LiveCaptureError):
    """The process has neither root nor CAP_NET_RAW."""

    code = "live_capture_not_permitted"


class InterfaceNotFound(NotFound):
    """No network interface has the name asked for."""

    code = "interface_not_found"
