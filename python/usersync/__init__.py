"""usersync: keep users and groups in step with identity providers and LDAP directories.

- :func:`open` a usersync database to manage directories and their tokens, read users and
  groups (SCIM JSON as dicts), count them and follow the change feed;
- :class:`SyncConfig` and :func:`plan` / :func:`sync` preview and apply an LDAP sync;
- :class:`Service` answers SCIM requests without HTTP;
- :mod:`usersync.scim` and :mod:`usersync.ldap` check filters with the server's engine.

    >>> import usersync
    >>> store = usersync.open(":memory:")
    >>> store.create_directory("acme")["endpoint"]
    '/scim/v2/acme'
"""

from . import errors, ldap, scim
from ._native import (
    AttributeChange,
    Change,
    Changes,
    Pages,
    Plan,
    Report,
    Response,
    Service,
    Store,
    SyncConfig,
    __version__,
    open,
    plan,
    sync,
)
from .errors import (
    ArgumentError,
    ConfigError,
    FilterError,
    LdapError,
    NotFoundError,
    PathError,
    SchemaError,
    StoreError,
    SyncBlockedError,
    SyncConflictError,
    SyncTargetError,
    SyncBusyError,
    UniquenessError,
    UsersyncError,
    VersionMismatchError,
)

__all__ = [
    "__version__",
    "open",
    "plan",
    "sync",
    "Store",
    "Pages",
    "Service",
    "Response",
    "SyncConfig",
    "Plan",
    "Change",
    "Changes",
    "AttributeChange",
    "Report",
    "scim",
    "ldap",
    "errors",
    # Spelled out, not `+= errors.__all__`: type checkers and stubtest read it statically.
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
