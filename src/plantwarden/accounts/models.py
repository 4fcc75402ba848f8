"""Tables of the accounts domain: users, their role grants, second factors, sessions, tokens and
the login throttle."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from plantwarden.core.db import Base, UTCDateTime


class User(Base):
    """A person (or a service) who signs in. Never deleted, only disabled, so that the audit
    trail keeps its names."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # argon2id PHC string; None until a password is set (never the case after `create_user`).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # The password is a generated one-time password: it leads only to setting a password (and
    # enrolling the second factor where the user's roles require it).
    one_time_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # The TOTP secret, encrypted with the accounts key (`secrets.AccountSecrets`), bound to the
    # user's id; set while enrolling (mfa_enabled still false) and after.
    mfa_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The last TOTP time step used: a code of that step or earlier is refused (no replay).
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)

    grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        order_by="RoleGrant.created_at",
    )

    @property
    def needs_password_change(self) -> bool:
        return self.password_hash is None or self.must_change_password or self.one_time_password


class RoleGrant(Base):
    """A role held by a user at a site, or at one zone of a site (the database is the truth of
    who may do what where; `services.policy_model` compiles it)."""

    __tablename__ = "role_grants"
    # One grant per user, role, site and zone. The unique constraint does not compare site-wide
    # grants (zone NULL: both databases hold NULLs distinct in a UNIQUE), so a partial unique
    # index covers those (migration 0020); `services.grant_role` checks first (GrantExists).
    __table_args__ = (
        UniqueConstraint("user_id", "role", "site", "zone"),
        Index(
            "uq_role_grants_site_wide",
            "user_id",
            "role",
            "site",
            unique=True,
            sqlite_where=text("zone IS NULL"),
            postgresql_where=text("zone IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(63))
    zone: Mapped[str | None] = mapped_column(String(63))
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    granted_by: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="grants")

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or self.valid_until > now


class RecoveryCode(Base):
    """A single-use recovery code of the second factor, stored as SHA-256 of the code (80 random
    bits: no slow hash needed)."""

    __tablename__ = "recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A bearer token of the JSON API: `pwt_<prefix>_<secret>`, looked up by its prefix.

    Only SHA-256 of the secret is stored. The secret is 256 random bits, so a fast hash is enough:
    a slow password hash protects guessable secrets, and nobody can enumerate 2**256 candidates.
    """

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    # Platform actions ("platform:alerts.read"); an empty list means all of the user's rights.
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class WebSession(Base):
    """A console session. The id is SHA-256 (hex) of the session token the browser holds, so the
    table alone never lets anyone resume a session."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    mfa_passed: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(200))

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed logins of one key (`user:alice`, `source:10.0.0.5`) and until when it is blocked."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
