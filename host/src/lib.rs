//! Host build of the module's pure logic (src/core), for tests.
#[path = "../../src/core/freetree.rs"]
pub mod freetree;
