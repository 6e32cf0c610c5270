//! The product's gitops module against the testkit's Git server, over HTTPS (token) and ssh
//! (key + known_hosts): access checks, the working clone, sync_files committing once and then
//! being up to date, a raced push recovered without force, a protected branch, credential,
//! TLS and host key failures with their exit status and hints; pull-request mode's proposal
//! recognised by its content, replaced when stale, and a merge later undone never taken as
//! landed.

use gitops_bootstrap::ExitStatus;
use gitops_bootstrap::gitops::{
    self, FileChange, GitCredentials, GitError, Proposal, ProposalMark, SyncOutcome, Workspace,
};

use crate::support::git::{self, SshGitServer, ssh_spec};
use crate::support::{snapshot, told};

fn profile_files(content: &str) -> Vec<FileChange> {
    vec![
        FileChange::write("clusters/dev/profile.yaml", content),
        FileChange::write(
            "clusters/dev/kustomization.yaml",
            "resources: [profile.yaml]\n",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn check_access_lists_the_branch() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("env").unwrap();
    let info = gitops::check_access(&git::https_spec(
        &fixture,
        "env",
        fixture.server.read_token(),
    ))
    .unwrap();
    assert_eq!(info.branch_head.as_deref(), Some(seed.as_str()));
    assert_eq!(info.default_branch.as_deref(), Some("main"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_commits_once_then_is_up_to_date() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("env").unwrap();
    let spec = git::https_spec(&fixture, "env", fixture.server.push_token());
    let dir = fixture.clone_dir("env");
    let mut workspace = Workspace::open_or_clone(&dir, spec.clone()).unwrap();
    assert_eq!(workspace.head().as_deref(), Some(seed.as_str()));
    assert_eq!(
        workspace.read_file("README.md").unwrap().as_deref(),
        Some(&b"seed\n"[..])
    );

    let first = workspace
        .sync_files(|_| Ok(profile_files("v1\n")), "add dev", 3)
        .unwrap();
    let SyncOutcome::Pushed { commit, attempts } = &first else {
        panic!("expected a push, got {first:?}");
    };
    assert_eq!(*attempts, 1);
    assert_eq!(
        fixture.server.head("env", "main").unwrap().as_deref(),
        Some(commit.as_str())
    );
    let pushed = fixture
        .server
        .read_file("env", "main", "clusters/dev/profile.yaml")
        .unwrap();
    assert_eq!(pushed.as_deref(), Some(&b"v1\n"[..]));
    assert!(workspace.path_exists("clusters/dev").unwrap());

    // A second identical sync, even from a fresh open of the same directory, commits nothing.
    let mut reopened = Workspace::open_or_clone(&dir, spec).unwrap();
    let second = reopened
        .sync_files(|_| Ok(profile_files("v1\n")), "add dev", 3)
        .unwrap();
    assert_eq!(
        second,
        SyncOutcome::UpToDate {
            head: commit.clone()
        }
    );
    assert_eq!(fixture.server.log("env", "main").unwrap().len(), 2);
    assert!(reopened.is_ancestor(&seed, commit).unwrap());
    assert!(!reopened.is_ancestor(commit, &seed).unwrap());

    let removed = reopened
        .sync_files(
            |_| Ok(vec![FileChange::remove("clusters")]),
            "remove dev",
            3,
        )
        .unwrap();
    assert!(matches!(removed, SyncOutcome::Pushed { .. }));
    assert_eq!(
        fixture
            .server
            .read_file("env", "main", "clusters/dev/profile.yaml")
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_sync_creates_the_branch_of_an_empty_repository() {
    let fixture = git::start().await;
    fixture.server.create_repo("empty").unwrap();
    let spec = git::https_spec(&fixture, "empty", fixture.server.push_token());
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("empty"), spec).unwrap();
    assert_eq!(workspace.head(), None);
    assert_eq!(workspace.read_file("anything").unwrap(), None);
    let outcome = workspace
        .sync_files(|_| Ok(profile_files("v1\n")), "first", 3)
        .unwrap();
    assert_eq!(
        fixture.server.head("empty", "main").unwrap().as_deref(),
        Some(outcome.head())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raced_push_is_retried_on_the_new_tip_without_force() {
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let spec = git::https_spec(&fixture, "env", fixture.server.push_token());
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("env"), spec).unwrap();
    fixture.server.race_next_push("env", "main");
    let mut renders = 0;
    let outcome = workspace
        .sync_files(
            |_| {
                renders += 1;
                Ok(profile_files("v1\n"))
            },
            "add dev",
            3,
        )
        .unwrap();
    let SyncOutcome::Pushed { commit, attempts } = outcome else {
        panic!("expected a push");
    };
    assert_eq!(attempts, 2);
    assert_eq!(renders, 2, "rendered again on the new tip");
    let log = fixture.server.log("env", "main").unwrap();
    assert_eq!(log.len(), 3, "seed, the other commit, ours: {log:?}");
    assert_eq!(log[0], commit);
    let tree = fixture
        .server
        .read_file("env", "main", "clusters/dev/profile.yaml")
        .unwrap();
    assert!(tree.is_some());
    assert!(
        workspace.is_ancestor(&log[1], &commit).unwrap(),
        "the other commit is kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_protected_branch_is_a_clear_rejection() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("env").unwrap();
    fixture.server.protect_branch("env", "main").unwrap();
    let spec = git::https_spec(&fixture, "env", fixture.server.push_token());
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("env"), spec).unwrap();
    let err = workspace
        .sync_files(|_| Ok(profile_files("v1\n")), "add dev", 3)
        .unwrap_err();
    assert_eq!(err.status(), ExitStatus::BadInput);
    snapshot!("protected_branch_error", told(err));
    assert_eq!(
        fixture.server.head("env", "main").unwrap().as_deref(),
        Some(seed.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_an_auth_error_that_never_shows_the_token() {
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let token = "wrong-token-5f1c2a";
    let spec = git::https_spec(&fixture, "env", token);
    let err = gitops::check_access(&spec).unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err:?}");
    let err = gitops_bootstrap::Error::from(
        Workspace::open_or_clone(&fixture.clone_dir("env"), spec).unwrap_err(),
    );
    assert_eq!(err.status(), ExitStatus::BadInput);
    let everything = format!(
        "{} {:?} {:?} {:?}",
        err.message(),
        err.hint(),
        err.chain(),
        err
    );
    assert!(!everything.contains(token), "{everything}");
    snapshot!("wrong_token_error", told(err));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_token_cannot_push() {
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let spec = git::https_spec(&fixture, "env", fixture.server.read_token());
    assert!(gitops::check_access(&spec).is_ok());
    let err = gitops::check_push_access(&spec).unwrap_err();
    assert!(matches!(err, GitError::AccessDenied { .. }), "{err:?}");
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("env"), spec).unwrap();
    let err = workspace
        .sync_files(|_| Ok(profile_files("v1\n")), "add dev", 3)
        .unwrap_err();
    snapshot!("read_token_push_error", told(err));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clone_made_with_push_rights_is_moved_into_place_only_once_they_are_granted() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("env").unwrap();
    let dir = fixture.clone_dir("env");
    let read = git::https_spec(&fixture, "env", fixture.server.read_token());
    let err = Workspace::open_with_push_rights(&dir, read).unwrap_err();
    assert!(matches!(err, GitError::AccessDenied { .. }), "{err:?}");
    let parent = dir.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(parent).unwrap().collect();
    assert!(left.is_empty(), "nothing left beside the clone: {left:?}");

    let push = git::https_spec(&fixture, "env", fixture.server.push_token());
    let workspace = Workspace::open_with_push_rights(&dir, push).unwrap();
    assert_eq!(workspace.head().as_deref(), Some(seed.as_str()));
    assert_eq!(std::fs::read(dir.join("README.md")).unwrap(), b"seed\n");
    let entries: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["env"], "the staging directory became the clone");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_server_certificate_is_a_tls_error() {
    let fixture = git::start_with_own_ca().await;
    fixture.seeded_repo("env").unwrap();
    let mut spec = git::https_spec(&fixture, "env", fixture.server.push_token());
    spec.ca_file = None;
    let err = gitops::check_access(&spec).unwrap_err();
    assert!(matches!(err, GitError::Tls { .. }), "{err:?}");
    snapshot!("untrusted_certificate_error", told(err));
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_clone_and_sync_with_a_known_host_key() {
    let fixture = git::start().await;
    let seed = fixture.seeded_repo("env").unwrap();
    let ssh = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();
    let spec = ssh_spec(&ssh, "env", ssh.known_hosts_path());
    let info = gitops::check_access(&spec).unwrap();
    assert_eq!(info.branch_head.as_deref(), Some(seed.as_str()));
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("ssh"), spec).unwrap();
    let outcome = workspace
        .sync_files(|_| Ok(profile_files("over ssh\n")), "ssh", 3)
        .unwrap();
    assert_eq!(
        fixture.server.head("env", "main").unwrap().as_deref(),
        Some(outcome.head())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_refuses_unknown_and_mismatched_host_keys() {
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let ssh = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();

    let empty = fixture.dir.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let err = gitops::check_access(&ssh_spec(&ssh, "env", &empty)).unwrap_err();
    let host = format!("[127.0.0.1]:{}", ssh.port());
    assert!(
        matches!(&err, GitError::UnknownHostKey { host: h, known_hosts } if *h == host && *known_hosts == empty),
        "{err:?}"
    );
    // ssh writes a host on another port as [host]:port.
    snapshot!(
        "unknown_host_key_error",
        told(err),
        extra = [(r"\]:\d+", "]:[port]")]
    );

    let foreign = gitops::generate_deploy_key(&fixture.dir.path().join("other-key")).unwrap();
    let mismatched = fixture.dir.path().join("mismatched_known_hosts");
    std::fs::write(&mismatched, format!("{host} {}\n", foreign.public_openssh)).unwrap();
    let err = gitops::check_access(&ssh_spec(&ssh, "env", &mismatched)).unwrap_err();
    assert!(matches!(err, GitError::HostKeyMismatch { .. }), "{err:?}");
    let status = gitops_bootstrap::error::Diagnose::exit_status(&err);
    assert_eq!(status, ExitStatus::BadInput);
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_with_a_key_the_server_does_not_know_is_an_auth_error() {
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let ssh = SshGitServer::start(fixture.server.repos_dir())
        .await
        .unwrap();
    let key_file = fixture.dir.path().join("deploy-key");
    gitops::generate_deploy_key(&key_file).unwrap();
    let mut spec = ssh_spec(&ssh, "env", ssh.known_hosts_path());
    spec.credentials = GitCredentials::SshKey {
        key_file,
        known_hosts: ssh.known_hosts_path().to_path_buf(),
    };
    let err = gitops::check_access(&spec).unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_unreachable_repositories_are_told_apart() {
    let fixture = git::start().await;
    let missing = git::https_spec(&fixture, "missing", fixture.server.push_token());
    let err = gitops::check_access(&missing).unwrap_err();
    assert!(matches!(err, GitError::NotFound { .. }), "{err:?}");

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut closed = git::https_spec(&fixture, "env", fixture.server.push_token());
    closed.url = format!("https://127.0.0.1:{port}/env.git");
    let err = gitops::check_access(&closed).unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err:?}");
    let status = gitops_bootstrap::error::Diagnose::exit_status(&err);
    assert_eq!(status, ExitStatus::Failure);
}

/// Issue 20 item 1: the proposal branch holds the tool's proposal only while its content is
/// this run's; a stale one of its own is replaced (the branch moved from the commit read),
/// and a target that merged the proposal but lost its change since is an error, not a wait.
#[tokio::test(flavor = "multi_thread")]
async fn a_proposal_is_recognised_by_its_content_and_a_stale_one_is_replaced() {
    const PROPOSAL: &str = "gitops-bootstrap/dev";
    let fixture = git::start().await;
    fixture.seeded_repo("env").unwrap();
    let spec = git::https_spec(&fixture, "env", fixture.server.push_token());
    let mut workspace = Workspace::open_or_clone(&fixture.clone_dir("env"), spec).unwrap();
    let mark = ProposalMark {
        env: "dev".into(),
        command: "create-env".into(),
        dir: "clusters/dev".into(),
    };
    let mut propose = |content: &'static str| {
        workspace
            .propose(|_| Ok(profile_files(content)), &mark, "add dev", PROPOSAL)
            .unwrap()
    };

    let Proposal::Pushed {
        commit: v1,
        replaced,
    } = propose("v1\n")
    else {
        panic!("expected a push");
    };
    assert!(replaced.is_empty());
    assert_eq!(propose("v1\n"), Proposal::Open { commit: v1.clone() });
    let Proposal::Pushed {
        commit: v2,
        replaced,
    } = propose("v2\n")
    else {
        panic!("expected a push");
    };
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].commit, v1, "v1 was replaced");
    assert_eq!(
        fixture.server.head("env", PROPOSAL).unwrap(),
        Some(v2.clone())
    );
    let log = fixture.server.log("env", PROPOSAL).unwrap();
    assert!(!log.contains(&v1), "moved off v1, not on top of it");

    fixture
        .server
        .merge_branch("env", PROPOSAL, "main")
        .unwrap();
    fixture
        .server
        .commit_files(
            "env",
            "main",
            &[("clusters/dev/profile.yaml", "edited\n")],
            "edit",
        )
        .unwrap();
    let err = workspace
        .landed(&v2, "clusters/dev", |_| Ok(profile_files("v2\n")))
        .unwrap_err();
    snapshot!(
        "a_proposal_is_recognised_by_its_content_and_a_stale_one_is_replaced",
        told(err)
    );
}
