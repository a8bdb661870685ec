//! TODO(skeleton): the webhook sink.
#![allow(unused_imports)]

use serde::{Deserialize, Serialize};

use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::engine::Notification;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
}

pub struct Webhook {}

impl Webhook {
    pub fn new(_config: &WebhookConfig, _http: reqwest::Client) -> Result<Webhook, SinkError> {
        todo!()
    }

    pub async fn push(&self, _n: &Notification) -> Result<(), SinkError> {
        todo!()
    }
}
