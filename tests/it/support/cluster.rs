//! cluster support
