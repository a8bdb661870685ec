//! Simulated agents: hosts that enroll and report over the real agent API
//! (real mutual TLS, real protobuf) from inside the test process, for tests
//! that need hundreds of hosts, where spawning hundreds of agent binaries
//! would test the machine rather than the collector.

use std::time::Duration;

use census_proto::v1 as pb;
use census_proto::v1::agent_service_client::AgentServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Collector;

/// Where and how simulated hosts enroll: owned, so enrollments can run as
/// concurrent tasks.
#[derive(Debug, Clone)]
pub struct Enroller {
    url: String,
    ca_pem: String,
    secret: String,
}

/// An enrolled simulated host.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub agent_id: String,
    pub hostname: String,
    cert_pem: String,
    key_pem: String,
}

impl Enroller {
    pub fn new(collector: &Collector) -> Enroller {
        Enroller {
            url: collector.agent_url(),
            ca_pem: std::fs::read_to_string(&collector.init.ca).expect("reading the collector's CA"),
            secret: collector.init.enrollment_secret.clone(),
        }
    }

    fn endpoint(&self, identity: Option<Identity>) -> Endpoint {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).domain_name("localhost");
        if let Some(id) = identity {
            tls = tls.identity(id);
        }
        Endpoint::from_shared(self.url.clone())
            .expect("agent url")
            .tls_config(tls)
            .expect("tls config")
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
    }

    /// Enrolls one simulated host named `hostname`.
    pub async fn enroll(&self, hostname: &str, agent_version: &str) -> SimAgent {
        let key = rcgen::KeyPair::generate().expect("key");
        let csr = rcgen::CertificateParams::default().serialize_request(&key).and_then(|c| c.pem()).expect("csr");
        let channel = self.endpoint(None).connect().await.expect("connecting for enrollment");
        let response = AgentServiceClient::new(channel)
            .enroll(pb::EnrollRequest {
                enrollment_secret: self.secret.clone(),
                csr_pem: csr,
                identity: Some(pb::HostIdentity {
                    host_uuid: format!("sim-{hostname}"),
                    hostname: hostname.to_string(),
                    host_uuid_source: "machine-id".into(),
                    ..Default::default()
                }),
                agent_version: agent_version.to_string(),
            })
            .await
            .unwrap_or_else(|s| panic!("enrolling {hostname}: {s}"))
            .into_inner();
        SimAgent {
            agent_id: response.agent_id,
            hostname: hostname.to_string(),
            cert_pem: response.certificate_pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// Enrolls `count` hosts named `<prefix>-<nnnn>`, `parallel` at a time.
    pub async fn enroll_many(&self, prefix: &str, count: usize, agent_version: &str, parallel: usize) -> Vec<SimAgent> {
        let mut agents = Vec::with_capacity(count);
        let names: Vec<String> = (0..count).map(|n| format!("{prefix}-{n:04}")).collect();
        for chunk in names.chunks(parallel.max(1)) {
            let mut set = tokio::task::JoinSet::new();
            for name in chunk {
                let (me, name, version) = (self.clone(), name.clone(), agent_version.to_string());
                set.spawn(async move { me.enroll(&name, &version).await });
            }
            while let Some(done) = set.join_next().await {
                agents.push(done.expect("enrollment task"));
            }
        }
        agents.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        agents
    }

    /// A mutual-TLS channel speaking as `agent`.
    pub async fn channel(&self, agent: &SimAgent) -> Channel {
        let identity = Identity::from_pem(&agent.cert_pem, &agent.key_pem);
        self.endpoint(Some(identity)).connect().await.expect("connecting with the agent certificate")
    }

    /// Like `channel`, connecting on first use: for senders that must keep
    /// going while the collector is down or restarting.
    pub fn channel_lazy(&self, agent: &SimAgent) -> Channel {
        let identity = Identity::from_pem(&agent.cert_pem, &agent.key_pem);
        self.endpoint(Some(identity)).connect_timeout(Duration::from_secs(2)).connect_lazy()
    }
}

/// A `Report` call whose request body is given as encoded protobuf bytes,
/// so tests can send what prost would never encode (invalid UTF-8 in a
/// string field). The answer is decoded as usual.
pub async fn report_raw(channel: Channel, encoded_request: Vec<u8>) -> Result<pb::ReportResponse, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/census.v1.AgentService/Report");
    let answer = grpc.unary(tonic::Request::new(encoded_request), path, RawCodec).await?.into_inner();
    prost::Message::decode(answer.as_slice()).map_err(|e| tonic::Status::internal(format!("decoding the answer: {e}")))
}

/// Bytes in, bytes out: the message framing is tonic's, the content ours.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
