//! The testkit's own integration tests, one binary apart from the product's suite so a testkit
//! change does not rebuild it: a module per part of the test cluster, sharing `support`.

mod support;

mod apiserver;
mod fidelity;
mod flux;
mod git;
mod operator;
mod schemas;
mod walkthrough;
