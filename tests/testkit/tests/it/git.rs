//! The testkit's Git server, through the real git CLI and plain HTTPS requests: clone and push
//! over HTTPS with the push token, 401 without a token, 403 for pushes with the read token,
//! the protected-branch hook, the raced push, and ssh with a matching and a foreign host key.

use std::path::Path;

use base64::Engine as _;

use crate::support::git::{self, GitFixture, SshGitServer, git};

fn basic_header(token: &str) -> String {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("x:{token}"));
    format!("http.extraHeader=Authorization: Basic {credentials}")
}

/// `git -c http.extraHeader=<token> <args>` trusting the fixture's CA. The CA goes through
/// GIT_SSL_CAINFO, which would override `http.sslCAInfo` when the environment sets it.
fn https_git(fixture: &GitFixture, token: &str, args: &[&str], cwd: &Path) -> std::process::Output {
    let header = basic_header(token);
    let mut all = vec!["-c", header.as_str()];
    all.extend_from_slice(args);
    let ca = fixture.ca_file.display().to_string();
    git(&all, cwd, &[("GIT_SSL_CAINFO", ca.as_str())])
}

fn commit_in(clone: &Path, file: &str) {
    std::fs::write(clone.join(file), "content\n").unwrap();
    assert!(git(&["add", "."], clone, &[]).status.success());
    let out = git(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-m",
            file,
        ],
        clone,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn https_client(fixture: &GitFixture) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(fixture.server.ca_pem().as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_clone_and_push_with_the_push_token() {
    let fixture = git::start().await;
    fixture.seeded_repo("app").unwrap();
    let clone = fixture.dir.path().join("clone");
    let url = fixture.server.url("app");
    let token = fixture.server.push_token().to_string();
    let work = fixture.dir.path();
    let out = https_git(&fixture, &token, &["clone", &url, "clone"], work);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(clone.join("README.md")).unwrap(),
        "seed\n"
    );

    commit_in(&clone, "pushed.txt");
    let out = https_git(&fixture, &token, &["push", "origin", "main"], &clone);
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed = fixture
        .server
        .read_file("app", "main", "pushed.txt")
        .unwrap();
    assert_eq!(pushed.as_deref(), Some(&b"content\n"[..]));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_token_get_401_with_a_basic_challenge() {
    let fixture = git::start().await;
    fixture.seeded_repo("app").unwrap();
    let client = https_client(&fixture).await;
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        fixture.server.url("app")
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic"), "{challenge}");

    let wrong = client
        .get(&url)
        .basic_auth("x", Some("not-a-token"))
        .send()
        .await;
    assert_eq!(wrong.unwrap().status(), 401);
    let read = client
        .get(&url)
        .basic_auth("anyone", Some(fixture.server.read_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_token_may_fetch_but_not_push() {
    let fixture = git::start().await;
    fixture.seeded_repo("app").unwrap();
    let client = https_client(&fixture).await;
    let url = format!(
        "{}/info/refs?service=git-receive-pack",
        fixture.server.url("app")
    );
    let response = client
        .get(&url)
        .basic_auth("x", Some(fixture.server.read_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let read_token = fixture.server.read_token().to_string();
    let work = fixture.dir.path();
    let out = https_git(
        &fixture,
        &read_token,
        &["clone", &fixture.server.url("app"), "c"],
        work,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let clone = work.join("c");
    commit_in(&clone, "nope.txt");
    let out = https_git(&fixture, &read_token, &["push", "origin", "main"], &clone);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("403"), "{}", stderr(&out));
    assert_eq!(
        fixture.server.read_file("app", "main", "nope.txt").unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn protected_branches_and_raced_pushes_are_refused() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("app").unwrap();
    let token = fixture.server.push_token().to_string();
    let work = fixture.dir.path();
    let out = https_git(
        &fixture,
        &token,
        &["clone", &fixture.server.url("app"), "c"],
        work,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let clone = work.join("c");
    commit_in(&clone, "one.txt");

    fixture.server.race_next_push("app", "main");
    let out = https_git(&fixture, &token, &["push", "origin", "main"], &clone);
    assert!(!out.status.success(), "a raced push must not succeed");
    let raced_head = fixture.server.head("app", "main").unwrap().unwrap();
    assert_ne!(raced_head, seed, "the server committed something itself");
    assert_eq!(fixture.server.log("app", "main").unwrap().len(), 2);

    fixture.server.protect_branch("app", "main").unwrap();
    let out = https_git(
        &fixture,
        &token,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "pull",
            "--rebase",
            "origin",
            "main",
        ],
        &clone,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = https_git(&fixture, &token, &["push", "origin", "main"], &clone);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("declined"), "{}", stderr(&out));
    assert_eq!(
        fixture.server.head("app", "main").unwrap().unwrap(),
        raced_head
    );
}

fn ssh_command(ssh: &SshGitServer, known_hosts: &Path) -> String {
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \
         -o GlobalKnownHostsFile=/dev/null -o BatchMode=yes",
        ssh.client_key_path().display(),
        known_hosts.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_clone_and_push_with_the_matching_host_key() {
    let fixture = git::start().await;
    fixture.seeded_repo("app").unwrap();
    let ssh = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();
    let command = ssh_command(&ssh, ssh.known_hosts_path());
    let env = [("GIT_SSH_COMMAND", command.as_str())];
    let work = fixture.dir.path();
    let out = git(&["clone", &ssh.url("app"), "c"], work, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let clone = work.join("c");
    assert!(clone.join("README.md").exists());
    commit_in(&clone, "over-ssh.txt");
    let out = git(&["push", "origin", "main"], &clone, &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        fixture
            .server
            .read_file("app", "main", "over-ssh.txt")
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_refuses_a_foreign_host_key() {
    let fixture = git::start().await;
    fixture.seeded_repo("app").unwrap();
    let ssh = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();
    // Another server's key under this server's name.
    let other = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();
    let foreign_key = other.known_hosts_line().split_once(' ').unwrap().1;
    let known_hosts = fixture.dir.path().join("foreign_known_hosts");
    std::fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{} {foreign_key}\n", ssh.port()),
    )
    .unwrap();
    let command = ssh_command(&ssh, &known_hosts);
    let out = git(
        &["clone", &ssh.url("app"), "c"],
        fixture.dir.path(),
        &[("GIT_SSH_COMMAND", command.as_str())],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
}
