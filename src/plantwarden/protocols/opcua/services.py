"""OPC UA service types: the numeric node ids of their binary encodings (OPC UA Part 6 §5.2.2.15,
Part 4 §5 and the NodeIds.csv of the specification), their names, and their operation category.

A MSG chunk's body starts with the node id of the `<Service>Request_Encoding_DefaultBinary` or
`<Service>Response_Encoding_DefaultBinary` object; those are the ids below (namespace 0).
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from plantwarden.protocols.common import Operation

_SERVICES: dict[str, tuple[int, int]] = {
    # service: (request encoding id, response encoding id)
    "FindServers": (422, 425),
    "FindServersOnNetwork": (12208, 12209),
    "GetEndpoints": (428, 431),
    "RegisterServer": (437, 440),
    "RegisterServer2": (12211, 12212),
    "OpenSecureChannel": (446, 449),
    "CloseSecureChannel": (452, 455),
    "CreateSession": (461, 464),
    "ActivateSession": (467, 470),
    "CloseSession": (473, 476),
    "Cancel": (479, 482),
    "AddNodes": (488, 491),
    "AddReferences": (494, 497),
    "DeleteNodes": (500, 503),
    "DeleteReferences": (506, 509),
    "Browse": (527, 530),
    "BrowseNext": (533, 536),
    "TranslateBrowsePathsToNodeIds": (554, 557),
    "RegisterNodes": (560, 563),
    "UnregisterNodes": (566, 569),
    "QueryFirst": (615, 618),
    "QueryNext": (621, 624),
    "Read": (631, 634),
    "HistoryRead": (664, 667),
    "Write": (673, 676),
    "HistoryUpdate": (700, 703),
    "Call": (712, 715),
    "CreateMonitoredItems": (751, 754),
    "ModifyMonitoredItems": (763, 766),
    "SetMonitoringMode": (769, 772),
    "SetTriggering": (775, 778),
    "DeleteMonitoredItems": (781, 784),
    "CreateSubscription": (787, 790),
    "ModifySubscription": (793, 796),
    "SetPublishingMode": (799, 802),
    "Publish": (826, 829),
    "Republish": (832, 835),
    "TransferSubscriptions": (841, 844),
    "DeleteSubscriptions": (847, 850),
}
SERVICE_FAULT = 397
"""`ServiceFault_Encoding_DefaultBinary`: a response carrying only a response header."""

_OPERATIONS: dict[str, Operation] = {
    "Read": Operation.READ,
    "HistoryRead": Operation.READ,
    "Write": Operation.WRITE,
    "HistoryUpdate": Operation.WRITE,
    "Call": Operation.CONTROL,
    "GetEndpoints": Operation.IDENTIFY,
    "FindServers": Operation.IDENTIFY,
    "FindServersOnNetwork": Operation.IDENTIFY,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


NAMES: dict[int, str] = {SERVICE_FAULT: "service_fault"}
"""Service type id -> name, lower case with underscores (e.g. 631 "read_request")."""
OPERATIONS: dict[int, Operation] = {SERVICE_FAULT: Operation.OTHER}
RESPONSES: frozenset[int] = frozenset({SERVICE_FAULT, *(response for _, response in _SERVICES.values())})
"""Type ids whose body starts with a ResponseHeader."""
for _service, (_request, _response) in _SERVICES.items():
    NAMES[_request] = _snake(_service) + "_request"
    NAMES[_response] = _snake(_service) + "_response"
    OPERATIONS[_request] = OPERATIONS[_response] = _OPERATIONS.get(_service, Operation.OTHER)

OPEN_SECURE_CHANNEL = frozenset(_SERVICES["OpenSecureChannel"])
CLOSE_SECURE_CHANNEL = frozenset(_SERVICES["CloseSecureChannel"])
CHANNEL_SERVICES = OPEN_SECURE_CHANNEL | CLOSE_SECURE_CHANNEL
"""Services carried by OPN and CLO messages, never by MSG."""

IDS: npt.NDArray[np.int64] = np.array(sorted(NAMES), dtype=np.int64)
"""The known ids, sorted (for `np.searchsorted`)."""
ID_NAMES: npt.NDArray[np.object_] = np.array([NAMES[i] for i in IDS.tolist()], dtype=object)
ID_OPERATIONS: npt.NDArray[np.uint8] = np.array([OPERATIONS[i] for i in IDS.tolist()], dtype=np.uint8)
ID_IS_RESPONSE: npt.NDArray[np.bool_] = np.array([i in RESPONSES for i in IDS.tolist()], dtype=np.bool_)
ID_IS_CHANNEL: npt.NDArray[np.bool_] = np.array([i in CHANNEL_SERVICES for i in IDS.tolist()], dtype=np.bool_)

SECURITY_MODES = {0: "invalid", 1: "none", 2: "sign", 3: "sign_and_encrypt"}
"""MessageSecurityMode (Part 4 §7.15)."""
REQUEST_TYPES = {0: "issue", 1: "renew"}
"""SecurityTokenRequestType (Part 4 §7.32)."""
POLICY_NONE = "http://opcfoundation.org/UA/SecurityPolicy#None"
