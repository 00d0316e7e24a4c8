//! `drflow drill`: a failure scenario played on the simulated cloud, from the first failed trade
//! to the first trade served by the standby, measured.

// `drflow drill --report` calls it once the drill's CLI lands (branch `drill`); until then only
// the tests do, so the binary would warn that it is unused.
#[cfg_attr(not(test), allow(dead_code))]
pub mod html;
pub mod model;
