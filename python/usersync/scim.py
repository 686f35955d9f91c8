"""SCIM 2.0 filters (RFC 7644 §3.4.2.2) and PATCH paths, parsed by the server's own engine.

    >>> from usersync import scim
    >>> f = scim.parse_filter('emails[type eq "work"].value ew "@example.com"')
    >>> str(f)
    'emails[type eq "work" and value ew "@example.com"]'
    >>> f.matches({"userName": "bjensen", "emails": [{"type": "work", "value": "b@example.com"}]})
    True
"""

from ._native import Filter, parse_filter, parse_path

__all__ = ["Filter", "parse_filter", "parse_path"]
