//! Host build of the module's pure logic (src/core), for tests.
#[path = "../../src/core/mod.rs"]
pub mod lazy_core;
pub use lazy_core::*;
