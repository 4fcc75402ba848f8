"""Errors of the policy model: all raised when a model is compiled (or an action is named)."""

from __future__ import annotations

from plantwarden.core.errors import InvalidInput


class InvalidPolicy(InvalidInput):
    """The policy model is malformed; the message names the role, rule or grant at fault."""

    code = "invalid_policy"


class InvalidAction(InvalidPolicy):
    """An action or action pattern is not `namespace:segment.segment` (patterns may use `*`)."""

    code = "invalid_action"


class UnknownRole(InvalidPolicy):
    """A grant names a role the model does not define."""

    code = "unknown_role"


class InvalidRange(InvalidPolicy):
    """A register or object range is reversed, negative, or overlaps another range of its rule."""

    code = "invalid_range"
