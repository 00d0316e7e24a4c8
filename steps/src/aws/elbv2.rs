//! The elbv2 kinds on AWS (a stub until its mapping lands: every verb says so).

use super::Clients;
use crate::backend::{
    CloudError, CreateRequest, ErrorKind, Identity, Kind, Resource, UpdateRequest,
};

fn todo(kind: Kind) -> CloudError {
    CloudError::new(
        ErrorKind::NotBuilt,
        format!("the aws target has no mapping for {kind} yet"),
    )
}

pub(super) async fn find(_c: &Clients, id: &Identity) -> Result<Option<Resource>, CloudError> {
    Err(todo(id.kind))
}

pub(super) async fn list(
    _c: &Clients,
    _region: &str,
    kind: Kind,
    _parent: Option<&str>,
) -> Result<Vec<Resource>, CloudError> {
    Err(todo(kind))
}

pub(super) async fn create(_c: &Clients, req: &CreateRequest) -> Result<Resource, CloudError> {
    Err(todo(req.kind))
}

pub(super) async fn update(
    _c: &Clients,
    current: &Resource,
    _req: &UpdateRequest,
) -> Result<Resource, CloudError> {
    Err(todo(current.kind))
}

pub(super) async fn delete(_c: &Clients, current: &Resource) -> Result<(), CloudError> {
    Err(todo(current.kind))
}
