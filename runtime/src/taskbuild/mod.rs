//! taskbuild
