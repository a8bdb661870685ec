//! TODO(skeleton): the servicenow sink.
#![allow(unused_imports)]

use serde::{Deserialize, Serialize};

use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::engine::Notification;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowConfig {
    pub url: String,
}

pub struct ServiceNow {}

impl ServiceNow {
    pub fn new(_config: &ServiceNowConfig, _http: reqwest::Client) -> Result<ServiceNow, SinkError> {
        todo!()
    }

    pub async fn find(&self, _marker: &str) -> Result<Option<String>, SinkError> {
        todo!()
    }
    pub async fn open(&self, _draft: &TicketDraft) -> Result<String, SinkError> {
        todo!()
    }
    pub async fn comment(&self, _ticket: &str, _note: &TicketNote) -> Result<(), SinkError> {
        todo!()
    }
    pub async fn resolve(&self, _ticket: &str, _note: &TicketNote) -> Result<(), SinkError> {
        todo!()
    }
}
