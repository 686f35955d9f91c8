//! A private Samba Active Directory domain controller: a domain provisioned into a temporary
//! directory (`samba-tool domain provision --targetdir`), only the LDAP, CLDAP, KDC and RPC
//! services, `ldb:nosync` (writes ten times faster; nothing here must survive a crash), and
//! a TLS certificate for `localhost` and `127.0.0.1` signed by a CA made at run time.
//! `samba -i` runs in the foreground and is stopped by its PID.
//!
//! AD listens on fixed ports (389, 636, 88…): one domain controller at a time on a machine,
//! so the tests that start one must not run in parallel with each other.
//!
//! Needs Debian's `samba`, `samba-ad-dc`, `samba-ad-provision`, `samba-dsdb-modules`,
//! `winbind`, `ldap-utils` and `openssl` (installed by `scripts/setup.sh`).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Certificates, certificates, ldap_tool};

/// The domain's naming context.
pub const DOMAIN: &str = "DC=example,DC=test";
/// The domain administrator's DN.
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=example,DC=test";
/// The domain administrator's password (it meets AD's complexity rules).
pub const ADMIN_PASSWORD: &str = "Usersync-Test-1";

/// A running domain controller. Stopped (and its files removed) when dropped.
#[derive(Debug)]
pub struct Samba {
    dir: PathBuf,
    process: Option<Child>,
    /// `ldaps://127.0.0.1:636`.
    pub ldaps_url: String,
    /// `ldap://127.0.0.1:389` (StartTLS is offered there).
    pub url: String,
    /// The CA that signed the server certificate.
    pub certificates: Certificates,
}

/// Whether something accepts connections on `port` of the loopback address.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

impl Samba {
    /// Provisions the domain `example.test` and starts its domain controller.
    ///
    /// # Panics
    /// When another server holds the AD ports, or Samba cannot be provisioned or started
    /// (is `samba-ad-dc` installed?).
    pub fn start(name: &str) -> Self {
        assert!(
            !listening(636) && !listening(389),
            "ports 389/636 are taken: a domain controller (a leftover `samba`?) is running"
        );
        let dir =
            std::env::temp_dir().join(format!("usersync-samba-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("samba directory");
        let out = Command::new("samba-tool")
            .args([
                "domain",
                "provision",
                "--realm=EXAMPLE.TEST",
                "--domain=EXAMPLE",
                "--server-role=dc",
                "--dns-backend=NONE",
                "--use-rfc2307",
                "--host-ip=127.0.0.1",
                "--option=interfaces=lo",
                "--option=bind interfaces only=yes",
            ])
            .arg(format!("--adminpass={ADMIN_PASSWORD}"))
            .arg(format!("--targetdir={}", dir.display()))
            .output()
            .expect("samba-tool runs (apt-get install samba-ad-dc samba-ad-provision)");
        assert!(
            out.status.success(),
            "samba-tool domain provision: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let certificates = certificates(&dir.join("tls"));
        let conf = dir.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).expect("smb.conf");
        let mut out = String::new();
        for line in text.lines() {
            let key = line.trim().split('=').next().unwrap_or_default().trim();
            match key {
                "server services" => {
                    out.push_str("\tserver services = ldap, cldap, kdc, rpc, drepl\n");
                }
                "log file" => {
                    out.push_str(&format!("\tlog file = {}\n", dir.join("log").display()));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            if line.trim() == "[global]" {
                out.push_str(&format!(
                    "\tldb:nosync = true\n\ttls enabled = yes\n\ttls certfile = {}\n\ttls keyfile = {}\n\ttls cafile = {}\n",
                    certificates.cert.display(),
                    certificates.key.display(),
                    certificates.ca.display()
                ));
            }
        }
        std::fs::write(&conf, out).expect("smb.conf written");
        let log = std::fs::File::create(dir.join("samba.out")).expect("samba.out");
        let process = Command::new("samba")
            .args(["-i", "-M", "single", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("samba runs (apt-get install samba-ad-dc)");
        let mut samba = Self {
            dir,
            process: Some(process),
            ldaps_url: "ldaps://127.0.0.1:636".into(),
            url: "ldap://127.0.0.1:389".into(),
            certificates,
        };
        samba.wait_ready();
        samba
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(p) = &mut self.process
                && let Ok(Some(status)) = p.try_wait()
            {
                let out = std::fs::read_to_string(self.dir.join("samba.out")).unwrap_or_default();
                panic!("samba stopped ({status}) before it answered: {out}");
            }
            if listening(636) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("samba did not answer on port 636 within 60 s");
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    fn tool(&self, tool: &str, extra: &[&str], ldif: &str) {
        ldap_tool(
            tool,
            &self.ldaps_url,
            (ADMIN_DN, ADMIN_PASSWORD),
            Some(&self.certificates.ca),
            extra,
            ldif,
        );
    }

    /// An attribute (`objectGUID`, `objectSid`) of the user or group (`what`: `user` or
    /// `group`) with this `sAMAccountName`, in the text form `samba-tool` prints: an oracle
    /// independent of usersync's own rendering of the bytes.
    ///
    /// # Panics
    /// When there is no such object or attribute.
    pub fn attribute(&self, what: &str, name: &str, attribute: &str) -> String {
        let out = Command::new("samba-tool")
            .args([what, "show", name])
            .arg(format!("--attributes={attribute}"))
            .arg("-H")
            .arg(self.dir.join("private/sam.ldb"))
            .output()
            .expect("samba-tool runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let prefix = format!("{attribute}: ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {attribute} for {what} {name}: {text}"))
            .trim()
            .to_owned()
    }

    /// The entry `dn` with `attributes`, as LDIF (`ldapsearch -LLL`), read as the domain
    /// administrator.
    ///
    /// # Panics
    /// When the search fails.
    pub fn read(&self, dn: &str, attributes: &[&str]) -> String {
        let out = Command::new("ldapsearch")
            .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &self.ldaps_url])
            .args(["-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-s", "base", "-b", dn])
            .arg("(objectClass=*)")
            .args(attributes)
            .env("LDAPTLS_CACERT", &self.certificates.ca)
            .output()
            .expect("ldapsearch runs");
        assert!(
            out.status.success(),
            "ldapsearch {dn}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Adds the entries of `ldif`, as the domain administrator.
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
}

impl Drop for Samba {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = Command::new("kill").arg(p.id().to_string()).status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = p.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
