//! Peer connections on the runtime's side: accepting on every core, moving a greeted
//! connection to the core it belongs to, and reading its frames into that core.

use super::core::Core;
use super::message::CoreMessage;
use crate::peer::accept::{greet, serve_peer_connection, LocalShape};
use glommio::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::rc::Rc;

/// Accepts peer connections until the listener fails; each is greeted, then served here or
/// handed to the core the dialer named.
pub async fn accept_peers(core: Rc<Core>, listener: TcpListener, shape: LocalShape) {
    loop {
        let mut stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "peer accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let core = Rc::clone(&core);
        let shape = shape.clone();
        glommio::spawn_local(async move {
            let hello = match greet(&mut stream, &shape).await {
                Ok(hello) => hello,
                Err(error) => return tracing::warn!(error, "peer connection refused"),
            };
            if hello.core == core.id() {
                serve(core, stream, hello.node_id).await;
                return;
            }
            // SAFETY: dup(2) on a descriptor this task owns; the copy is handed to exactly
            // one other core, which becomes its only owner.
            let fd = unsafe { libc::dup(stream.as_raw_fd()) };
            drop(stream);
            if fd < 0 {
                return tracing::warn!("cannot duplicate a peer connection");
            }
            core.forward_connection(hello.core, fd, hello.node_id);
        })
        .detach();
    }
}

async fn serve(core: Rc<Core>, stream: TcpStream, from: u64) {
    serve_peer_connection(stream, from, |from, body| core.on_peer_frame(from, &body)).await;
}

/// Takes over a connection another core accepted for this one.
pub fn adopt(core: &Core, fd: RawFd, from: u64) {
    // SAFETY: the accepting core duplicated this descriptor for this core alone and
    // closed its own; nothing else refers to it.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let Some(core) = core.self_rc() else { return };
    glommio::spawn_local(serve(core, stream, from)).detach();
}

impl Core {
    fn forward_connection(&self, target_core: u32, fd: RawFd, from: u64) {
        self.send_to_core(target_core, CoreMessage::PeerConnection { fd, from });
    }
}
