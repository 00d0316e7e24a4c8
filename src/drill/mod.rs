//! `drflow drill`: a failure scenario played on the simulated cloud, from the first failed trade
//! to the first trade served by the standby, measured.

pub mod model;
