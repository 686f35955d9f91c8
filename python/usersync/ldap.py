"""LDAP search filters (RFC 4515), checked as an LDAP sync's configuration would be.

    >>> from usersync import ldap
    >>> ldap.validate_filter("(&(objectClass=person)(uid=j*))")
    '(&(objectClass=person)(uid=j*))'
"""

from ._native import validate_ldap_filter as validate_filter

__all__ = ["validate_filter"]
