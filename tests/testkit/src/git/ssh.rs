//! Git over ssh: Debian's OpenSSH server (package `openssh-server`) started on a loopback
//! port with its own host key and an authorized_keys holding one generated client key. Git's
//! `git-upload-pack`/`git-receive-pack` run as root over the same bare repositories the HTTPS
//! server serves.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};

const SSHD: &str = "/usr/sbin/sshd";
const PACKAGE_HINT: &str = "install Debian's openssh-server (apt-get install -y openssh-server)";
/// Attempts at starting sshd; another process may take the port picked for it in between.
const START_ATTEMPTS: u32 = 3;

/// A running sshd serving the repositories of one directory. Dropping it kills sshd.
pub struct SshGitServer {
    repos_dir: PathBuf,
    port: u16,
    client_key: PathBuf,
    known_hosts: PathBuf,
    known_hosts_line: String,
    _sshd: Child,
    dir: tempfile::TempDir,
}

impl SshGitServer {
    /// Starts sshd for the bare repositories (`<name>.git`) under `repos_dir`, e.g.
    /// [`super::GitServer::repos_dir`]. Fails with a message naming the package when sshd is
    /// not installed.
    pub async fn start(repos_dir: &Path) -> anyhow::Result<SshGitServer> {
        if !Path::new(SSHD).exists() {
            anyhow::bail!("{SSHD} not found: {PACKAGE_HINT}");
        }
        let dir = tempfile::tempdir().context("creating the sshd dir")?;
        let host_key = dir.path().join("host_ed25519");
        let client_key = dir.path().join("client_ed25519");
        keygen(&host_key).await?;
        keygen(&client_key).await?;
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )?;
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match start_sshd(dir.path(), &host_key).await {
                Ok((child, port)) => {
                    let host_public = std::fs::read_to_string(host_key.with_extension("pub"))?;
                    let known_hosts_line = known_hosts_line(port, &host_public)?;
                    let known_hosts = dir.path().join("known_hosts");
                    std::fs::write(&known_hosts, format!("{known_hosts_line}\n"))?;
                    return Ok(SshGitServer {
                        repos_dir: repos_dir.to_path_buf(),
                        port,
                        client_key,
                        known_hosts,
                        known_hosts_line,
                        _sshd: child,
                        dir,
                    });
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// Lets `public_openssh` (an `ssh-ed25519 AAAA…` line) in too, as registering a deploy key
    /// does on a Git host; sshd reads authorized_keys afresh on every connection.
    pub fn authorize_key(&self, public_openssh: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        let path = self.dir.path().join("authorized_keys");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{}", public_openssh.trim()).context("adding the key")?;
        Ok(())
    }

    /// `ssh://root@127.0.0.1:<port>/<repos dir>/<name>.git`
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://root@127.0.0.1:{}{}/{name}.git",
            self.port,
            self.repos_dir.display()
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The private key (OpenSSH format, no passphrase) sshd accepts.
    pub fn client_key_path(&self) -> &Path {
        &self.client_key
    }

    /// A known_hosts file holding exactly [`Self::known_hosts_line`].
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// `[127.0.0.1]:<port> ssh-ed25519 AAAA…`: the server's host key as known_hosts has it.
    pub fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }
}

async fn keygen(path: &Path) -> anyhow::Result<()> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "testkit", "-f"])
        .arg(path)
        .output()
        .await
        .with_context(|| format!("running ssh-keygen ({PACKAGE_HINT})"))?;
    anyhow::ensure!(
        output.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn known_hosts_line(port: u16, host_public: &str) -> anyhow::Result<String> {
    let mut fields = host_public.split_whitespace();
    let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
        anyhow::bail!("unexpected host public key {host_public:?}");
    };
    Ok(format!("[127.0.0.1]:{port} {kind} {key}"))
}

fn sshd_config(dir: &Path, host_key: &Path, port: u16) -> String {
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         AuthenticationMethods publickey\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         StrictModes no\n\
         PrintMotd no\n\
         LogLevel INFO\n",
        host_key = host_key.display(),
        dir = dir.display(),
    )
}

/// Starts sshd on a port that was free a moment ago and waits for its banner.
async fn start_sshd(dir: &Path, host_key: &Path) -> anyhow::Result<(Child, u16)> {
    let port = {
        let probe = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        probe.local_addr()?.port()
    };
    let config = dir.join("sshd_config");
    std::fs::write(&config, sshd_config(dir, host_key, port))?;
    let log_path = dir.join("sshd.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {SSHD} ({PACKAGE_HINT})"))?;
    match wait_for_banner(&mut child, port).await {
        Ok(()) => Ok((child, port)),
        Err(err) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(err.context(format!("sshd did not come up; its log:\n{log}")))
        }
    }
}

async fn wait_for_banner(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("sshd exited with {status}");
        }
        if let Ok(mut stream) =
            tokio::net::TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
        {
            let mut banner = [0u8; 4];
            let read = tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut banner));
            if matches!(read.await, Ok(Ok(_))) && &banner == b"SSH-" {
                return Ok(());
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "sshd did not answer on port {port} within 10s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_line_names_the_bracketed_port() {
        let line = known_hosts_line(2222, "ssh-ed25519 AAAAC3Nz testkit\n").unwrap();
        assert_eq!(line, "[127.0.0.1]:2222 ssh-ed25519 AAAAC3Nz");
        assert!(known_hosts_line(1, "garbage").is_err());
    }
}
