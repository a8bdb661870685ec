//! TODO(skeleton): the email sink.
#![allow(unused_imports)]

use serde::{Deserialize, Serialize};

use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::engine::Notification;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub url: String,
}

pub struct Email {}

impl Email {
    pub fn new(_config: &EmailConfig, _timeout: std::time::Duration, _ca_file: Option<&std::path::Path>) -> Result<Email, SinkError> {
        todo!()
    }

    pub async fn push(&self, _n: &Notification) -> Result<(), SinkError> {
        todo!()
    }
}
