//! `quorder status`: the cluster as any reachable node sees it (it asks its peers).

use super::{Context, Failure};
use quorder_client::{ClientError, Connection};
use quorder_proto::status::ClusterStatus;
use serde::Serialize;

/// JSON view of a node.
#[derive(Debug, Serialize)]
pub struct NodeView {
    id: u64,
    region: String,
    addr: String,
    reachable: bool,
}

/// JSON view of a mirror.
#[derive(Debug, Serialize)]
pub struct MirrorView {
    node: u64,
    role: &'static str,
    term: u64,
    commit_index: u64,
    applied_index: u64,
    /// 16 hex digits (a u64 does not survive every JSON reader as a number).
    digest: String,
}

/// JSON view of a shard.
#[derive(Debug, Serialize)]
pub struct ShardView {
    shard: u32,
    primary: Option<u64>,
    term: u64,
    mirrors: Vec<MirrorView>,
}

/// JSON view of the cluster.
#[derive(Debug, Serialize)]
pub struct StatusView {
    answered_by: u64,
    nodes: Vec<NodeView>,
    shards: Vec<ShardView>,
}

impl From<ClusterStatus> for StatusView {
    fn from(status: ClusterStatus) -> StatusView {
        StatusView {
            answered_by: status.answered_by,
            nodes: status
                .nodes
                .into_iter()
                .map(|node| NodeView {
                    id: node.id,
                    region: node.region,
                    addr: node.addr,
                    reachable: node.reachable,
                })
                .collect(),
            shards: status
                .shards
                .into_iter()
                .map(|shard| ShardView {
                    shard: shard.shard,
                    primary: shard.primary,
                    term: shard.term,
                    mirrors: shard
                        .mirrors
                        .into_iter()
                        .map(|mirror| MirrorView {
                            node: mirror.node,
                            role: mirror.role.name(),
                            term: mirror.term,
                            commit_index: mirror.commit_index,
                            applied_index: mirror.applied_index,
                            digest: format!("{:016x}", mirror.digest),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn human(view: &StatusView) -> String {
    let mut text = format!("answered by node {}\nnodes:\n", view.answered_by);
    for node in &view.nodes {
        let state = if node.reachable {
            "reachable"
        } else {
            "UNREACHABLE"
        };
        text.push_str(&format!(
            "  {:>3}  {:<10} {:<22} {state}\n",
            node.id, node.region, node.addr
        ));
    }
    text.push_str("shards:\n  shard primary   term  mirrors (node:role commit/applied digest)\n");
    for shard in &view.shards {
        let primary = shard
            .primary
            .map_or("-".to_string(), |node| node.to_string());
        let mirrors: Vec<String> = shard
            .mirrors
            .iter()
            .map(|mirror| {
                format!(
                    "{}:{} {}/{} {}",
                    mirror.node,
                    mirror.role,
                    mirror.commit_index,
                    mirror.applied_index,
                    &mirror.digest[..8]
                )
            })
            .collect();
        text.push_str(&format!(
            "  {:>5} {:>7} {:>6}  {}\n",
            shard.shard,
            primary,
            shard.term,
            mirrors.join("  ")
        ));
    }
    text.trim_end().to_string()
}

/// Asks the first address that answers.
pub fn run(context: &Context) -> Result<(), Failure> {
    let mut failures = Vec::new();
    for address in &context.addresses {
        let connection = match Connection::connect(address, context.options.connect_timeout) {
            Ok(connection) => connection,
            Err(error) => {
                failures.push(format!("{address}: {error}"));
                continue;
            }
        };
        match connection.status(true, context.options.request_timeout) {
            Ok(status) => {
                let view = StatusView::from(status);
                return context.output.print(&view, || human(&view));
            }
            Err(error) => failures.push(format!("{address}: {error}")),
        }
    }
    Err(Failure::from(ClientError::NoReachableNode(
        failures.join("; "),
    )))
}
