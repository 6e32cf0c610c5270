//! testkit_apiserver
