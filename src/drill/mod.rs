//! `drflow drill`: a failure scenario played on the simulated cloud, from the first failed trade
//! to the first trade served by the standby, measured.
//!
//! [`config`] finds the triggers and runbooks, [`params`] checks the parameters, [`run`] plays a
//! scenario (provision, settle, client, fault, triggers, the failover run), [`measure`] turns
//! what the world recorded into a [`model::DrillReport`], and [`render`] and [`html`] show it.

pub mod config;
pub mod html;
pub mod measure;
pub mod model;
pub mod params;
pub mod render;
pub mod run;
