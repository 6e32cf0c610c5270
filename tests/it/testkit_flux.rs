//! testkit_flux
