#!/usr/bin/env bash
# The Python module's checks: builds `usersync` from source into a private virtualenv
# (target/venv, with maturin develop), checks the typed stubs against the module (mypy's
# stubtest, mypy --strict) and runs pytest (strict: a warning fails; the doctests too) with a
# real slapd started by the testkit's harness.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-dev.txt
export VIRTUAL_ENV="$PWD/$venv" PATH="$PWD/$venv/bin:$PATH"

# The slapd harness the LDAP tests share with the Rust suites.
cargo build --locked -q -p usersync-testkit --bin usersync-test-slapd
export USERSYNC_TEST_SLAPD="$PWD/target/debug/usersync-test-slapd"

(cd python && maturin develop --locked -q)

(cd python && python -m mypy.stubtest usersync && python -m mypy --strict usersync tests)

# The wheel as a user installs it (`pip install ./python`, a release build), in a virtualenv
# of its own, used from outside the source tree.
wheel_venv=target/venv-wheel
[ -x "$wheel_venv/bin/python" ] || python3 -m venv "$wheel_venv"
"$wheel_venv/bin/pip" install -q --disable-pip-version-check --force-reinstall ./python
wheel_python="$PWD/$wheel_venv/bin/python"
(cd / && "$wheel_python" - <<'PY'
import usersync, usersync.errors
store = usersync.open(":memory:")
assert store.create_directory("acme")["token"]
assert str(usersync.scim.parse_filter('emails[type eq "work"].value pr')) == 'emails[type eq "work" and value pr]'
try:
    usersync.ldap.validate_filter("(cn=")
except ValueError as e:
    assert e.kind == "invalidLdapFilter"
print("pip install ./python: usersync", usersync.__version__, "works")
PY
)

# Exit code 5 means pytest collected nothing: that is a failure here, never a pass.
set +e
(cd python && python -m pytest)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
