#!/usr/bin/env bash
# Builds libusersync and installs it for C programs: the shared and static libraries, the
# header, and a pkg-config file.
#
#   scripts/install-lib.sh [PREFIX]           # release build, PREFIX defaults to /usr/local
#   scripts/install-lib.sh --debug PREFIX     # the debug build
#   scripts/install-lib.sh --debug --no-build PREFIX   # as built already (the tests)
#
# Then: cc app.c $(pkg-config --cflags --libs usersync)            (dynamic)
#       cc app.c PREFIX/lib/libusersync.a $(pkg-config --cflags --libs --static usersync)
#                                                                  (static: the archive first,
#                                                                  or the linker takes the .so)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
build=yes
if [ "${1:-}" = "--debug" ]; then
  profile=debug
  shift
fi
if [ "${1:-}" = "--no-build" ]; then
  build=no
  shift
fi
prefix="${1:-/usr/local}"
if [ "$build" = yes ]; then
  if [ "$profile" = release ]; then
    cargo build --locked --release -p usersync-ffi
  else
    cargo build --locked -p usersync-ffi
  fi
fi
target_dir="${CARGO_TARGET_DIR:-target}/$profile"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"

install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0644 include/usersync.h "$prefix/include/usersync.h"
abi="$(sed -n 's/^#define USERSYNC_ABI_VERSION \([0-9][0-9]*\)$/\1/p' include/usersync.h)"
[ -n "$abi" ] || { echo "include/usersync.h defines no USERSYNC_ABI_VERSION" >&2; exit 1; }
# The file by its version, the SONAME (`libusersync.so.<ABI>`) the loader looks for, and the
# name the linker's `-lusersync` finds.
install -m 0755 "$target_dir/libusersync.so" "$prefix/lib/libusersync.so.$version"
ln -sfn "libusersync.so.$version" "$prefix/lib/libusersync.so.$abi"
ln -sfn "libusersync.so.$abi" "$prefix/lib/libusersync.so"
install -m 0644 "$target_dir/libusersync.a" "$prefix/lib/libusersync.a"
# Libs.private: the system libraries the Rust standard library needs when linked statically
# (`cargo rustc -- --print native-static-libs`).
cat >"$prefix/lib/pkgconfig/usersync.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: usersync
Description: User and group synchronization engine: SCIM 2.0 endpoint, LDAP and Active Directory sync
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lusersync
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC
echo "installed libusersync $version ($profile) into $prefix"
