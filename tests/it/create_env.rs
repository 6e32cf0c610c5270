//! create_env
