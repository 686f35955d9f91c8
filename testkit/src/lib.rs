//! Real servers for usersync's tests, started by the tests that need them and stopped by PID:
//! a private OpenLDAP `slapd` (its own cn=config in a temporary directory, the memberof,
//! refint and syncprov overlays, size limits that force paging, and TLS with a certificate
//! authority made at run time).
//!
//! Needs Debian's `slapd`, `ldap-utils` and `openssl` (installed by `scripts/setup.sh`).
//!
//! Also a private PostgreSQL server ([`postgres::Postgres`], Debian's `postgresql`), and a
//! private Samba Active Directory domain controller ([`samba::Samba`], Debian's `samba`).
//!
//! Also an HTTP proxy that injects the errors of a busy server ([`proxy::FaultyProxy`]), and
//! the identity-provider transcripts' replayer ([`transcripts::replay`]).

pub mod postgres;
pub mod proxy;
pub mod samba;
pub mod transcripts;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The suffix of the test directory.
pub const BASE: &str = "dc=example,dc=com";
/// The administrator's DN.
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
/// The administrator's password.
pub const ADMIN_PASSWORD: &str = "admin-secret";
/// The account syncs bind as: subject to the server's limits, unlike the administrator.
pub const SERVICE_DN: &str = "cn=usersync,dc=example,dc=com";
/// The service account's password.
pub const SERVICE_PASSWORD: &str = "service-secret";
/// The server refuses pages larger than this and answers unpaged searches with at most
/// `HARD_LIMIT` entries, as production servers do.
pub const PAGE_LIMIT: usize = 500;
/// See [`PAGE_LIMIT`].
pub const HARD_LIMIT: usize = 1000;

/// A certificate authority and a server certificate for `localhost` and `127.0.0.1`.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Removes the scratch directories of test processes that are no longer running: those in
/// the temporary directory named `<prefix>…-<pid>`. A run that failed or was killed keeps
/// its files for inspection until the next run of the same tests.
pub fn remove_ended_runs(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes a CA and a server certificate in `dir` with openssl.
///
/// # Panics
/// When openssl fails: a test cannot go on without its certificates.
pub fn certificates(dir: &Path) -> Certificates {
    std::fs::create_dir_all(dir).expect("certificate directory");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=usersync test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("extension file");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    Certificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}

/// A private slapd. Stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Slapd {
    dir: PathBuf,
    pid: Option<u32>,
    /// `ldap://127.0.0.1:PORT` (StartTLS is offered there too).
    pub url: String,
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    /// The CA that signed the server certificate.
    pub certificates: Certificates,
}

/// A loopback port free now and never handed out before by this process. Tests run in
/// parallel: a killed server's port, free again, must not go to the next server another
/// test starts, or a test of a dead server would reach a live one (it did, once in CI).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if given.insert(port) {
            return port;
        }
    }
}

impl Slapd {
    /// Starts a slapd with an empty `dc=example,dc=com` and the base entries
    /// `ou=people` and `ou=groups`.
    ///
    /// # Panics
    /// When slapd cannot be configured or started (is `slapd` installed?).
    pub fn start(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("usersync-slapd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        let certificates = certificates(&dir.join("tls"));
        let config = config_ldif(&dir, &certificates);
        std::fs::write(dir.join("config.ldif"), config).expect("config.ldif");
        let out = Command::new("slapadd")
            .args(["-n0", "-F"])
            .arg(dir.join("config"))
            .arg("-l")
            .arg(dir.join("config.ldif"))
            .output()
            .expect("slapadd runs (apt-get install slapd)");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (port, tls_port) = (free_port(), free_port());
        let url = format!("ldap://127.0.0.1:{port}");
        let ldaps_url = format!("ldaps://127.0.0.1:{tls_port}");
        let mut slapd = Self {
            dir,
            pid: None,
            url,
            ldaps_url,
            certificates,
        };
        slapd.launch();
        slapd.add(&format!(
            "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
             dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
             dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
             dn: {SERVICE_DN}\nobjectClass: person\ncn: usersync\nsn: service\nuserPassword: {SERVICE_PASSWORD}\n"
        ));
        slapd
    }

    /// Starts the slapd process on this instance's configuration and ports.
    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("slapd.pid"));
        let status = Command::new("slapd")
            .arg("-h")
            .arg(format!("{}/ {}/", self.url, self.ldaps_url))
            .arg("-F")
            .arg(self.dir.join("config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("slapd runs");
        assert!(status.success(), "slapd did not start");
        self.wait_ready();
    }

    /// Starts the server again after [`Slapd::kill`], on the same data and ports.
    ///
    /// # Panics
    /// When slapd does not come back.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        let pid_file = self.dir.join("slapd.pid");
        while started.elapsed() < Duration::from_secs(20) {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse()
            {
                self.pid = Some(pid);
                let probe = Command::new("ldapsearch")
                    .args([
                        "-x",
                        "-H",
                        &self.url,
                        "-b",
                        "",
                        "-s",
                        "base",
                        "(objectClass=*)",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if probe.is_ok_and(|s| s.success()) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("slapd did not answer within 20 s");
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Runs an LDAP tool as the administrator with `ldif` on its input.
    fn tool(&self, tool: &str, extra: &[&str], ldif: &str) {
        ldap_tool(
            tool,
            &self.url,
            (ADMIN_DN, ADMIN_PASSWORD),
            None,
            extra,
            ldif,
        );
    }

    /// Adds the entries of `ldif`.
    pub fn add(&self, ldif: &str) {
        self.tool("ldapadd", &[], ldif);
    }

    /// Applies the changes of `ldif` (changetype records).
    pub fn modify(&self, ldif: &str) {
        self.tool("ldapmodify", &[], ldif);
    }

    /// Deletes the entries `dns`.
    pub fn delete(&self, dns: &[&str]) {
        self.tool("ldapdelete", dns, "");
    }

    /// Kills the server at once (`kill -9`), as a crash would.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let started = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Runs an LDAP tool of ldap-utils (`ldapadd`, `ldapmodify`, `ldapdelete`) against `url`,
/// bound as `(dn, password)`, trusting `ca` for TLS, with `ldif` on its input.
///
/// # Panics
/// When the tool fails: the test's data would not be what it says.
pub(crate) fn ldap_tool(
    tool: &str,
    url: &str,
    (dn, password): (&str, &str),
    ca: Option<&Path>,
    extra: &[&str],
    ldif: &str,
) {
    let mut command = Command::new(tool);
    command.args(["-x", "-H", url, "-D", dn, "-w", password]);
    if let Some(ca) = ca {
        command.env("LDAPTLS_CACERT", ca);
    }
    let mut child = command
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ldap-utils installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ldif.as_bytes())
        .expect("ldif written");
    let out = child.wait_with_output().expect("tool finished");
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Slapd {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            // Wait for it to go, so the next test's files are its own.
            let started = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && started.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The private cn=config: schemas, an mdb database with the overlays, limits and TLS.
fn config_ldif(dir: &Path, certs: &Certificates) -> String {
    let schema = |name: &str| {
        std::fs::read_to_string(format!("/etc/ldap/schema/{name}.ldif"))
            .unwrap_or_else(|e| panic!("schema {name}: {e} (apt-get install slapd)"))
    };
    let hash = Command::new("slappasswd")
        .args(["-s", ADMIN_PASSWORD])
        .output()
        .expect("slappasswd runs");
    let hash = String::from_utf8_lossy(&hash.stdout).trim().to_owned();
    let d = dir.display();
    format!(
        "dn: cn=config\n\
         objectClass: olcGlobal\n\
         cn: config\n\
         olcPidFile: {d}/slapd.pid\n\
         olcTLSCACertificateFile: {ca}\n\
         olcTLSCertificateFile: {cert}\n\
         olcTLSCertificateKeyFile: {key}\n\
         \n\
         dn: cn=module{{0}},cn=config\n\
         objectClass: olcModuleList\n\
         cn: module{{0}}\n\
         olcModulePath: /usr/lib/ldap\n\
         olcModuleLoad: back_mdb\n\
         olcModuleLoad: memberof\n\
         olcModuleLoad: refint\n\
         olcModuleLoad: syncprov\n\
         \n\
         dn: cn=schema,cn=config\n\
         objectClass: olcSchemaConfig\n\
         cn: schema\n\
         \n\
         {core}\n{cosine}\n{inetorgperson}\n{nis}\n\
         dn: olcDatabase={{-1}}frontend,cn=config\n\
         objectClass: olcDatabaseConfig\n\
         objectClass: olcFrontendConfig\n\
         olcDatabase: {{-1}}frontend\n\
         olcSizeLimit: size.soft={PAGE_LIMIT} size.hard={HARD_LIMIT} size.pr={PAGE_LIMIT} size.prtotal=unlimited\n\
         \n\
         dn: olcDatabase={{0}}config,cn=config\n\
         objectClass: olcDatabaseConfig\n\
         olcDatabase: {{0}}config\n\
         olcAccess: {{0}}to * by * none\n\
         \n\
         dn: olcDatabase={{1}}mdb,cn=config\n\
         objectClass: olcDatabaseConfig\n\
         objectClass: olcMdbConfig\n\
         olcDatabase: {{1}}mdb\n\
         olcSuffix: {BASE}\n\
         olcRootDN: {ADMIN_DN}\n\
         olcRootPW: {hash}\n\
         olcDbDirectory: {d}/data\n\
         olcDbNoSync: TRUE\n\
         olcDbMaxSize: 1073741824\n\
         olcDbIndex: objectClass eq\n\
         olcDbIndex: uid,cn,mail eq,sub\n\
         olcDbIndex: member,uniqueMember,memberUid,memberOf eq\n\
         olcDbIndex: entryUUID,entryCSN eq\n\
         olcDbIndex: modifyTimestamp eq\n\
         olcLimits: dn.exact=\"{ADMIN_DN}\" size=unlimited\n\
         olcAccess: {{0}}to * by * read\n\
         \n\
         dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config\n\
         objectClass: olcOverlayConfig\n\
         objectClass: olcMemberOf\n\
         olcOverlay: {{0}}memberof\n\
         olcMemberOfRefInt: TRUE\n\
         \n\
         dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config\n\
         objectClass: olcOverlayConfig\n\
         objectClass: olcRefintConfig\n\
         olcOverlay: {{1}}refint\n\
         olcRefintAttribute: member memberOf\n\
         \n\
         dn: olcOverlay={{2}}syncprov,olcDatabase={{1}}mdb,cn=config\n\
         objectClass: olcOverlayConfig\n\
         objectClass: olcSyncProvConfig\n\
         olcOverlay: {{2}}syncprov\n\
         \n",
        ca = certs.ca.display(),
        cert = certs.cert.display(),
        key = certs.key.display(),
        core = schema("core"),
        cosine = schema("cosine"),
        inetorgperson = schema("inetorgperson"),
        nis = schema("nis"),
    )
}
