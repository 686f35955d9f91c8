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

# The slapd and PostgreSQL harnesses the tests share with the Rust suites.
cargo build --locked -q -p usersync-testkit --bin usersync-test-slapd --bin usersync-test-postgres
export USERSYNC_TEST_SLAPD="$PWD/target/debug/usersync-test-slapd"
export USERSYNC_TEST_POSTGRES="$PWD/target/debug/usersync-test-postgres"

(cd python && maturin develop --locked -q)

(cd python && python -m mypy.stubtest usersync && python -m mypy --strict usersync tests)

# The wheel as a user installs it (`pip install ./python`, a release build), in a virtualenv
# of its own on the oldest CPython it supports (3.9) when this machine has one (pyenv's), used
# from outside the source tree.
oldest=python3
for candidate in python3.9 "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.9*/bin/python3; do
  if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
    oldest=$candidate
    break
  fi
done
wheel_venv=target/venv-wheel-$("$oldest" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ -x "$wheel_venv/bin/python" ] || "$oldest" -m venv "$wheel_venv"
"$wheel_venv/bin/pip" install -q --disable-pip-version-check -r <(grep '^pytest' python/requirements-dev.txt)
"$wheel_venv/bin/pip" install -q --disable-pip-version-check --force-reinstall ./python
# From `/`, so that `import usersync` is the installed wheel, not python/usersync/.
wheel_python="$PWD/$wheel_venv/bin/python"
tests="$PWD/python/tests"
(cd / && "$wheel_python" -m pytest -q -p no:cacheprovider -c "$tests/../pyproject.toml" "$tests" \
  && "$wheel_python" -c 'import sys, usersync; print("pip install ./python: usersync", usersync.__version__, "from", usersync.__file__, "on Python", sys.version.split()[0])')

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
