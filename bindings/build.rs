//! Gives `libusersync.so` its SONAME, `libusersync.so.<USERSYNC_ABI_VERSION>`: a program
//! linked against one ABI is never loaded with a library of another. The number is read from
//! `src/lib.rs`, its one definition, which the header and `usersync_abi_version` also give.

fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    let lib = std::fs::read_to_string("src/lib.rs").unwrap_or_default();
    let abi = lib
        .lines()
        .find_map(|l| {
            l.strip_prefix("pub const USERSYNC_ABI_VERSION: u32 = ")?
                .strip_suffix(';')
        })
        .unwrap_or_else(|| panic!("src/lib.rs defines no `pub const USERSYNC_ABI_VERSION: u32`"));
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libusersync.so.{abi}");
    }
}
