"""The exceptions usersync raises.

Every one is a :class:`UsersyncError` with a stable ``kind`` (``"invalidFilter"``,
``"notFound"``, ``"ldap"``…), and also an instance of the built-in exception that code
already catches for that kind of problem::

    >>> import usersync
    >>> try:
    ...     usersync.scim.parse_filter('userName eq "bjensen" and')
    ... except ValueError as e:  # FilterError is a ValueError
    ...     print(e.kind, e.position)
    invalidFilter 25
"""

from __future__ import annotations

from typing import Optional, Sequence

__all__ = [
    "UsersyncError",
    "FilterError",
    "PathError",
    "SchemaError",
    "ArgumentError",
    "ConfigError",
    "NotFoundError",
    "UniquenessError",
    "VersionMismatchError",
    "StoreError",
    "LdapError",
    "SyncBlockedError",
    "SyncConflictError",
    "SyncTargetError",
    "SyncBusyError",
]


class UsersyncError(Exception):
    """Base of every usersync error.

    ``kind`` is stable and made for code to test; the message is for people. ``scim_type``
    is the SCIM ``scimType`` the service answers for the same problem, where there is one.
    ``position``/``length`` (filters and paths) index the string that was parsed, in
    characters; ``expected`` lists what would have fitted there; ``key`` names the
    configuration key at fault; ``reasons`` lists the thresholds a blocked plan crosses;
    ``report_json`` is, for a sync that applied changes and then failed, the run as JSON
    (what it applied is in its ``partial_report``, or its ``report`` when only recording it
    failed).
    """

    kind: str
    scim_type: Optional[str]
    position: Optional[int]
    length: Optional[int]
    expected: Sequence[str]
    key: Optional[str]
    reasons: Sequence[str]
    report_json: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str = "unknown",
        scim_type: Optional[str] = None,
        position: Optional[int] = None,
        length: Optional[int] = None,
        expected: Sequence[str] = (),
        key: Optional[str] = None,
        reasons: Sequence[str] = (),
        report_json: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.scim_type = scim_type
        self.position = position
        self.length = length
        self.expected = tuple(expected)
        self.key = key
        self.reasons = tuple(reasons)
        self.report_json = report_json

    def __str__(self) -> str:
        message = super().__str__()
        if self.position is not None:
            return f"{message} (at {self.position})"
        return message


class FilterError(UsersyncError, ValueError):
    """A SCIM filter (kind ``invalidFilter``) or an LDAP filter (``invalidLdapFilter``) that
    does not parse, or compares an attribute in a way its type forbids."""


class PathError(UsersyncError, ValueError):
    """A SCIM PATCH path that does not parse (``invalidPath``)."""


class SchemaError(UsersyncError, ValueError):
    """A malformed schema definition (``invalidSchema``)."""


class ArgumentError(UsersyncError, ValueError):
    """An argument out of its range (``invalidArgument``), or a value the store does not
    accept (``invalidValue``)."""


class ConfigError(UsersyncError, ValueError):
    """A sync configuration that cannot be used (``syncConfig``); ``key`` names the key."""


class NotFoundError(UsersyncError, LookupError):
    """No such directory, user or group (``notFound``)."""


class UniquenessError(UsersyncError, ValueError):
    """A unique value (userName, displayName, directory name) is taken (``uniqueness``)."""


class VersionMismatchError(UsersyncError, RuntimeError):
    """The resource changed since the version given (``versionMismatch``)."""


class StoreError(UsersyncError, OSError):
    """The database failed (``storeBackend``); nothing was changed."""


class LdapError(UsersyncError, ConnectionError):
    """No LDAP server answered, or the bind was refused (``ldap``)."""


class SyncBlockedError(UsersyncError, RuntimeError):
    """The plan crosses a deletion threshold (``syncBlocked``): nothing was applied. Apply it
    with ``allow_deletes=True`` if this is intended; ``reasons`` says which thresholds."""


class SyncConflictError(UsersyncError, RuntimeError):
    """A userName another directory owns, under policy ``fail`` (``syncConflict``)."""


class SyncTargetError(UsersyncError, OSError):
    """The target failed part-way (``syncTarget``); what was applied stays and the next run
    converges."""


class SyncBusyError(UsersyncError, RuntimeError):
    """Another sync of the directory is running (``syncBusy``), in this or another process
    or node sharing the store: nothing was applied; apply the plan later."""
