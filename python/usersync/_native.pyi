"""Typed stubs of the compiled module ``usersync._native`` (checked by mypy's stubtest)."""

import os
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, TypedDict, Union, final


__version__: str
__all__ = [
    "AttributeChange",
    "Change",
    "Changes",
    "Filter",
    "Pages",
    "Plan",
    "Report",
    "Response",
    "Schemas",
    "Service",
    "Store",
    "SyncConfig",
    "__version__",
    "open",
    "parse_filter",
    "parse_path",
    "plan",
    "sync",
    "validate_ldap_filter",
]

_JsonValue = Any
"""A value as ``json.loads`` makes it."""

class _CreatedDirectory(TypedDict):
    name: str
    kind: str
    endpoint: str
    token: Optional[str]

_DirectorySummary = TypedDict(
    "_DirectorySummary",
    {
        "name": str,
        "kind": str,
        "endpoint": str,
        "activeUsers": int,
        "inactiveUsers": int,
        "retentionDays": int,
        "userNameScope": str,
        "keepPasswordHashes": bool,
        "strict": bool,
    },
)

class _IssuedToken(TypedDict):
    id: int
    token: str

class _TokenInfo(TypedDict):
    id: int
    created: str

class _UserCounts(TypedDict):
    active: int
    inactive: int

_Event = TypedDict(
    "_Event",
    {
        "seq": int,
        "directory": Optional[str],
        "type": str,
        "id": str,
        "event": str,
        "version": int,
        "time": str,
    },
)

class _SyncRunRecord(TypedDict):
    id: int
    started: str
    finished: str
    outcome: str
    report: Dict[str, _JsonValue]

class _PlanMode(TypedDict):
    since: Optional[str]
    reason: str

_Database = Union["Store", str, "os.PathLike[str]"]

@final
class Filter:
    """A parsed SCIM filter; ``str()`` gives its canonical text."""

    def to_dict(self) -> Dict[str, _JsonValue]: ...
    def matches(
        self,
        resource: Mapping[str, _JsonValue],
        resource_type: str = "User",
        *,
        schemas: Optional[Schemas] = None,
    ) -> bool: ...
    def check(self, resource_type: str = "User", *, schemas: Optional[Schemas] = None) -> List[str]: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Schemas:
    """The built-in schemas plus extension schemas, for filters over custom attributes."""

    def __init__(self) -> None: ...
    def add_extension(
        self, resource_type: str, schema: Union[str, Dict[str, _JsonValue]], *, required: bool = False
    ) -> None: ...

def parse_filter(text: str, *, strict: bool = False) -> Filter: ...
def parse_path(text: str, *, strict: bool = False) -> str: ...
def validate_ldap_filter(text: str) -> str: ...

@final
class Pages:
    """The users or groups a search selects, read lazily a page at a time."""

    def __iter__(self) -> Iterator[Dict[str, _JsonValue]]: ...
    def __next__(self) -> Dict[str, _JsonValue]: ...
    def total(self) -> int: ...

@final
class Store:
    """A usersync database, opened by :func:`open`."""

    @property
    def path(self) -> str: ...
    def create_directory(
        self,
        name: str,
        kind: str = "scim",
        *,
        retention_days: int = 30,
        user_name_scope: str = "platform",
        keep_password_hashes: bool = False,
        strict: bool = False,
    ) -> _CreatedDirectory: ...
    def verify_password(
        self, directory: str, user_name: str, password: str
    ) -> Optional[str]: ...
    def directories(self) -> List[_DirectorySummary]: ...
    def rotate_token(self, directory: str) -> _IssuedToken: ...
    def tokens(self, directory: str) -> List[_TokenInfo]: ...
    def revoke_token(self, directory: str, token_id: int) -> None: ...
    def get_user(self, directory: str, id: str) -> Optional[Dict[str, _JsonValue]]: ...
    def get_group(self, directory: str, id: str) -> Optional[Dict[str, _JsonValue]]: ...
    def users(
        self, directory: str, filter: Optional[str] = None, *, page_size: int = 100
    ) -> Pages: ...
    def groups(
        self, directory: str, filter: Optional[str] = None, *, page_size: int = 100
    ) -> Pages: ...
    def user_counts(self, directory: str) -> _UserCounts: ...
    def events_after(
        self, seq: int = 0, limit: int = 1000, *, wait: float = 0.0
    ) -> List[_Event]: ...
    def purge_inactive(self, directory: Optional[str] = None) -> Dict[str, int]: ...
    def runs(self, directory: str, limit: int = 20) -> List[_SyncRunRecord]: ...

def open(path: Union[str, "os.PathLike[str]"]) -> Store: ...

@final
class Response:
    """A SCIM response."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Dict[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def cause(self) -> Optional[str]:
        """Why the service failed, for a 500 whose cause is known: for the server's log."""
    def header(self, name: str) -> Optional[str]: ...
    def json(self) -> _JsonValue: ...

@final
class Service:
    """A SCIM 2.0 service over a usersync database."""

    def __new__(
        cls,
        database: _Database,
        *,
        require_token: bool = True,
        max_results: Optional[int] = None,
        max_payload: Optional[int] = None,
    ) -> "Service": ...
    def handle(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: Optional[Dict[str, str]] = None,
        body: Union[bytes, str, Dict[str, _JsonValue], List[_JsonValue], None] = None,
    ) -> Response: ...

@final
class SyncConfig:
    """A checked LDAP sync configuration."""

    @staticmethod
    def from_file(path: Union[str, "os.PathLike[str]"]) -> "SyncConfig": ...
    @staticmethod
    def from_toml(text: str) -> "SyncConfig": ...
    @staticmethod
    def from_dict(data: Dict[str, _JsonValue]) -> "SyncConfig": ...
    @property
    def directory(self) -> str: ...

@final
class AttributeChange:
    @property
    def attribute(self) -> str: ...
    @property
    def old(self) -> _JsonValue: ...
    @property
    def new(self) -> _JsonValue: ...

class _MemberRef(TypedDict):
    kind: str
    anchor: str
    name: str

@final
class Change:
    """One planned change."""

    @property
    def action(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def anchor(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def id(self) -> Optional[str]: ...
    @property
    def reason(self) -> str: ...
    @property
    def diff(self) -> List[AttributeChange]: ...
    @property
    def members(self) -> List[_MemberRef]: ...
    @property
    def destructive(self) -> bool: ...

@final
class Report:
    """What an apply did."""

    @property
    def outcome(self) -> str: ...
    @property
    def applied(self) -> Dict[str, int]: ...
    @property
    def conflicts(self) -> List[str]: ...
    @property
    def failures(self) -> List[str]: ...
    @property
    def milliseconds(self) -> Dict[str, int]: ...
    @property
    def ok(self) -> bool: ...
    def to_json(self) -> str: ...

@final
class Changes:
    """An iterator over a plan's changes, made as they are read."""

    def __iter__(self) -> Iterator[Change]: ...
    def __next__(self) -> Change: ...

@final
class Plan:
    """The changes a sync would make; nothing is changed until :meth:`apply`."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Changes: ...
    def __getitem__(self, index: int, /) -> Change: ...
    def __bool__(self) -> bool: ...
    def summary(self) -> Dict[str, int]: ...
    def to_json(self) -> str: ...
    @property
    def blocked(self) -> List[str]: ...
    @property
    def incomplete(self) -> List[str]: ...
    @property
    def warnings(self) -> List[str]: ...
    @property
    def mode(self) -> _PlanMode: ...
    def apply(
        self,
        *,
        allow_deletes: bool = False,
        progress: Optional[Callable[[int, int], object]] = None,
    ) -> Report: ...

def plan(config: SyncConfig, database: _Database, *, full: bool = False) -> Plan: ...
def sync(
    config: SyncConfig,
    database: _Database,
    *,
    allow_deletes: bool = False,
    full: bool = False,
    progress: Optional[Callable[[int, int], object]] = None,
) -> Report: ...
