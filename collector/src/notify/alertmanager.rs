//! TODO(skeleton): the alertmanager sink.
#![allow(unused_imports)]

use serde::{Deserialize, Serialize};

use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::engine::Notification;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    pub url: String,
}

pub struct Alertmanager {}

impl Alertmanager {
    pub fn new(_config: &AlertmanagerConfig, _http: reqwest::Client) -> Result<Alertmanager, SinkError> {
        todo!()
    }

    pub async fn push(&self, _n: &Notification) -> Result<(), SinkError> {
        todo!()
    }
}
