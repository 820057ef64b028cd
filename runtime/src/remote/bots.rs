//! The Remote Workers API (`google.devtools.remoteworkers.v1test2.Bots`) that BuildGrid's
//! scheduler speaks to its bots: the few messages `hermetic worker` needs, written by hand with
//! prost's derive (the field numbers are those of BuildGrid 0.4.4's `bots.proto` and
//! `worker.proto`), and a client for its two calls.
//!
//! A bot opens a session ([`CreateBotSessionRequest`]), then keeps it up to date
//! ([`UpdateBotSessionRequest`], which the server holds for a while when it has nothing to
//! give): the server adds leases (BuildGrid 0.4.4 offers them already `ACTIVE`) whose payload
//! is an `Any` holding the REAPI `Action` to run (or, the API allows, its `Digest`); the bot
//! runs them, heartbeats by sending them back `ACTIVE`, and reports each `COMPLETED` with a
//! status and, as its result, an `Any` holding the `ActionResult`. A lease the server stops
//! listing is cancelled. `scripts/buildgrid/README.md` records what was verified against a
//! real server.

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use tonic::transport::Channel;

/// `google.devtools.remoteworkers.v1test2.BotStatus`: `OK`.
pub const BOT_STATUS_OK: i32 = 1;

/// `google.devtools.remoteworkers.v1test2.LeaseState`.
pub mod lease_state {
    /// Offered by the server.
    pub const PENDING: i32 = 1;
    /// Accepted by the bot.
    pub const ACTIVE: i32 = 2;
    /// Finished by the bot, with a status.
    pub const COMPLETED: i32 = 4;
    /// Withdrawn by the server.
    pub const CANCELLED: i32 = 5;
}

/// The type URL of an `Any` holding a REAPI `Action` (the lease payload BuildGrid sends).
pub const ACTION_TYPE_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.Action";
/// The type URL of an `Any` holding a REAPI `Digest` (a lease's payload).
pub const DIGEST_TYPE_URL: &str = "type.googleapis.com/build.bazel.remote.execution.v2.Digest";
/// The type URL of an `Any` holding a REAPI `ActionResult` (a lease's result).
pub const ACTION_RESULT_TYPE_URL: &str =
    "type.googleapis.com/build.bazel.remote.execution.v2.ActionResult";

/// `BotSession`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BotSession {
    /// The session's name, given by the server.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The bot's own, stable id.
    #[prost(string, tag = "2")]
    pub bot_id: String,
    /// A `BotStatus`.
    #[prost(int32, tag = "3")]
    pub status: i32,
    /// What the bot offers.
    #[prost(message, optional, tag = "4")]
    pub worker: Option<Worker>,
    /// The leases the server gave and the bot holds.
    #[prost(message, repeated, tag = "5")]
    pub leases: Vec<Lease>,
    #[prost(message, optional, tag = "6")]
    pub expire_time: Option<Timestamp>,
    #[prost(string, tag = "7")]
    pub version: String,
}

/// `Lease`: one action to run.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    #[prost(string, tag = "7")]
    pub id: String,
    /// What to run: an `Any` holding the action's `Digest`.
    #[prost(message, optional, tag = "8")]
    pub payload: Option<Any>,
    /// How it went: an `Any` holding the `ActionResult`.
    #[prost(message, optional, tag = "9")]
    pub result: Option<Any>,
    /// A [`lease_state`].
    #[prost(int32, tag = "2")]
    pub state: i32,
    /// Set with `COMPLETED`.
    #[prost(message, optional, tag = "3")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "4")]
    pub requirements: Option<Worker>,
    #[prost(message, optional, tag = "5")]
    pub expire_time: Option<Timestamp>,
}

/// `Worker`: the devices and properties of a bot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Worker {
    #[prost(message, repeated, tag = "1")]
    pub devices: Vec<Device>,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
    /// E.g. `capacity`: how many leases the bot takes at once.
    #[prost(message, repeated, tag = "3")]
    pub configs: Vec<Property>,
}

/// `Device`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Device {
    #[prost(string, tag = "1")]
    pub handle: String,
    #[prost(message, repeated, tag = "2")]
    pub properties: Vec<Property>,
}

/// `Worker.Property` and `Device.Property`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Property {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `CreateBotSessionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CreateBotSessionRequest {
    /// The instance name.
    #[prost(string, tag = "1")]
    pub parent: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
}

/// `UpdateBotSessionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateBotSessionRequest {
    /// The session's name.
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub bot_session: Option<BotSession>,
    #[prost(message, optional, tag = "3")]
    pub update_mask: Option<FieldMask>,
}

/// `google.protobuf.FieldMask`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FieldMask {
    #[prost(string, repeated, tag = "1")]
    pub paths: Vec<String>,
}

/// A client of the `Bots` service.
#[derive(Debug, Clone)]
pub struct BotsClient {
    grpc: tonic::client::Grpc<Channel>,
}

impl BotsClient {
    pub fn new(channel: Channel) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// `CreateBotSession`.
    pub async fn create(
        &mut self,
        request: tonic::Request<CreateBotSessionRequest>,
    ) -> Result<BotSession, tonic::Status> {
        self.call(
            "/google.devtools.remoteworkers.v1test2.Bots/CreateBotSession",
            request,
        )
        .await
    }

    /// `UpdateBotSession`.
    pub async fn update(
        &mut self,
        request: tonic::Request<UpdateBotSessionRequest>,
    ) -> Result<BotSession, tonic::Status> {
        self.call(
            "/google.devtools.remoteworkers.v1test2.Bots/UpdateBotSession",
            request,
        )
        .await
    }

    async fn call<M: prost::Message + Send + Sync + 'static>(
        &mut self,
        path: &'static str,
        request: tonic::Request<M>,
    ) -> Result<BotSession, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("the server is not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::<M, BotSession>::default();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(path);
        self.grpc
            .unary(request, path, codec)
            .await
            .map(tonic::Response::into_inner)
    }
}
