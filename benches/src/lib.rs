//! Shared helpers for the usersync benchmarks: the fixture corpus and realistic users.
