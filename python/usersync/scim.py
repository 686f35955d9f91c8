"""SCIM 2.0 filters (RFC 7644 §3.4.2.2) and PATCH paths, parsed by the server's own engine.

    >>> from usersync import scim
    >>> f = scim.parse_filter('emails[type eq "work"].value ew "@example.com"')
    >>> str(f)
    'emails[type eq "work" and value ew "@example.com"]'
    >>> f.matches({"userName": "bjensen", "emails": [{"type": "work", "value": "b@example.com"}]})
    True

Custom attributes come with their extension schema:

    >>> schemas = scim.Schemas()
    >>> schemas.add_extension("User", {"id": "urn:example:Badge", "attributes": [
    ...     {"name": "level", "type": "integer"}]})
    >>> scim.parse_filter("urn:example:Badge:level gt 2").matches(
    ...     {"urn:example:Badge": {"level": 3}}, schemas=schemas)
    True
"""

from ._native import Filter, Schemas, parse_filter, parse_path

__all__ = ["Filter", "Schemas", "parse_filter", "parse_path"]
