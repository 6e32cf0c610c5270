//! Teardown and rebuild act only on what they prove is the env's own (issue 19): each case
//! reproduces one defect against a sandbox of its own and checks the exit code, the message
//! (snapshot) and that nothing outside the env changed.

mod scope;
