//! The `--record` file: one JSON line per acknowledged order, for checkers that later
//! verify that no acknowledged order was lost.
//!
//! ```text
//! {"order_id":"000000000000000000000000075bcd15","status":"committed","total_cents":300}
//! ```
//!
//! `order_id` is 32 lower-case hex digits (big-endian, zero-padded); `status` is
//! `committed`, `queued` or `rejected` (see `outcome`); warmup orders are recorded too.
//! Lines come from every connection's reply callbacks through one bounded queue to a
//! dedicated writer thread with a buffered file; when the writer falls behind, the
//! callbacks wait rather than drop a line. Lines are in reply order, not send order.

use crate::limits::RECORD_QUEUE_LINES_MAX;
use quorder_proto::OrderStatus;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// One acknowledged order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLine {
    /// The order.
    pub order_id: u128,
    /// Its acknowledged status.
    pub status: OrderStatus,
    /// Its total as the node computed it.
    pub total_cents: u64,
}

impl RecordLine {
    /// The line as written, newline included.
    pub fn to_json_line(&self) -> String {
        format!(
            "{{\"order_id\":\"{:032x}\",\"status\":\"{}\",\"total_cents\":{}}}\n",
            self.order_id,
            self.status.name(),
            self.total_cents
        )
    }
}

enum Message {
    Line(RecordLine),
    Stop,
}

/// Hands lines to the writer. Cloned into every reply callback.
#[derive(Debug, Clone)]
pub struct RecordSender {
    queue: SyncSender<Message>,
}

impl RecordSender {
    /// Queues `line`, waiting while the queue is full. After `RecordWriter::finish` the
    /// line is dropped; the run stops recording before it finishes the writer.
    pub fn send(&self, line: RecordLine) {
        // An error means the writer already stopped: nothing is left to write to.
        let _ = self.queue.send(Message::Line(line));
    }
}

/// The writer thread and its queue.
#[derive(Debug)]
pub struct RecordWriter {
    queue: SyncSender<Message>,
    thread: JoinHandle<io::Result<u64>>,
}

impl RecordWriter {
    /// Creates (or truncates) `path` and starts the writer thread.
    pub fn create(path: &Path) -> io::Result<RecordWriter> {
        let file = File::create(path)?;
        let (queue, lines) = sync_channel(RECORD_QUEUE_LINES_MAX);
        let thread = std::thread::Builder::new()
            .name("record-writer".to_string())
            .spawn(move || write_lines(file, lines))?;
        Ok(RecordWriter { queue, thread })
    }

    /// A sender for reply callbacks.
    pub fn sender(&self) -> RecordSender {
        RecordSender {
            queue: self.queue.clone(),
        }
    }

    /// Writes what is queued, flushes and syncs the file, stops the thread. Returns the
    /// number of lines written, or the first write error.
    pub fn finish(self) -> io::Result<u64> {
        // Fails only if the thread is gone already, which join reports below.
        let _ = self.queue.send(Message::Stop);
        match self.thread.join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the record writer thread panicked")),
        }
    }
}

fn write_lines(file: File, lines: Receiver<Message>) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written = 0u64;
    let mut first_error = None;
    // Stops at `Stop`, or when every sender is gone.
    while let Ok(Message::Line(line)) = lines.recv() {
        // After an error keep draining, so that callbacks never wait on a dead writer.
        if first_error.is_none() {
            match out.write_all(line.to_json_line().as_bytes()) {
                Ok(()) => written += 1,
                Err(error) => first_error = Some(error),
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    out.flush()?;
    out.get_ref().sync_data()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_json_with_a_fixed_width_hex_id() {
        let line = RecordLine {
            order_id: 123_456_789,
            status: OrderStatus::Committed,
            total_cents: 300,
        };
        let text = line.to_json_line();
        assert_eq!(
            text,
            "{\"order_id\":\"000000000000000000000000075bcd15\",\"status\":\"committed\",\
             \"total_cents\":300}\n"
        );
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["total_cents"], 300);
        let full = RecordLine {
            order_id: u128::MAX,
            status: OrderStatus::Rejected,
            total_cents: 0,
        };
        assert!(full.to_json_line().contains(&"f".repeat(32)));
        assert!(full.to_json_line().contains("\"rejected\""));
    }

    #[test]
    fn the_writer_writes_every_line_from_every_sender() {
        let path = std::env::temp_dir().join(format!("quorder-record-{}", std::process::id()));
        let writer = RecordWriter::create(&path).expect("create");
        let threads: Vec<_> = (0..4u128)
            .map(|thread| {
                let sender = writer.sender();
                std::thread::spawn(move || {
                    for index in 0..1000u128 {
                        sender.send(RecordLine {
                            order_id: thread * 1000 + index + 1,
                            status: OrderStatus::Committed,
                            total_cents: 1,
                        });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("sender thread");
        }
        assert_eq!(writer.finish().expect("finish"), 4000);
        let text = std::fs::read_to_string(&path).expect("read back");
        assert_eq!(text.lines().count(), 4000);
        let _ = std::fs::remove_file(&path);
    }
}
