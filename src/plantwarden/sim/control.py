"""The running plant's control socket (`core/control_socket.py`): `plantwarden sim attack` and the
console's exercise page ask the plant to carry out an attack, so that its traffic goes through the
plant's tap like everything else.

Requests: `{"attack": name, "console": [host, port], "broker": [host, port]}` (console and broker
optional: the defaults, or the plant's own broker) answered with the attack's record;
`{"scenarios": true}` answered with `{"scenarios": [{"name", "technique", "description"}, ...]}`.
"""

from __future__ import annotations

from plantwarden.core.control_socket import ask, serve_control
from plantwarden.core.control_socket import plant_control_path as control_path

__all__ = ["ask", "control_path", "serve_control"]
