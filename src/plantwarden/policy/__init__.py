"""The policy model: who may do what, where, under which conditions; compiled to decide fast.

Pure: no database, no I/O. See docs/policy.md.
"""

from plantwarden.policy.compile import Decision, PolicySnapshot, Request, compile_policy
from plantwarden.policy.errors import InvalidAction, InvalidPolicy, InvalidRange, UnknownRole
from plantwarden.policy.model import (
    Action,
    Conditions,
    Grant,
    Namespace,
    PolicyModel,
    Role,
    Rule,
    Scope,
    ScopePattern,
    Subject,
    action,
)
from plantwarden.policy.overlay import DenyOverlay, OverlayState
from plantwarden.policy.roles import BUILTIN_ROLES, PLANT_OPERATIONS, PLATFORM_ACTIONS, builtin_model

__all__ = [
    "BUILTIN_ROLES",
    "PLANT_OPERATIONS",
    "PLATFORM_ACTIONS",
    "Action",
    "Conditions",
    "Decision",
    "DenyOverlay",
    "Grant",
    "InvalidAction",
    "InvalidPolicy",
    "InvalidRange",
    "Namespace",
    "OverlayState",
    "PolicyModel",
    "PolicySnapshot",
    "Request",
    "Role",
    "Rule",
    "Scope",
    "ScopePattern",
    "Subject",
    "UnknownRole",
    "action",
    "builtin_model",
    "compile_policy",
]
