//! Printing results: one JSON object with `--json`, a short readable text otherwise.

use super::Failure;
use serde::Serialize;
use std::io::{self, Write};

/// The output mode chosen on the command line.
pub struct Output {
    json: bool,
}

impl Output {
    /// Output in JSON if `json`, else human-readable.
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// Prints `value` as JSON, or the text `human` makes, followed by a newline.
    pub fn print<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), Failure> {
        let text = if self.json {
            serde_json::to_string(value).map_err(|error| Failure {
                message: format!("cannot render JSON: {error}"),
                exit_code: 1,
            })?
        } else {
            human()
        };
        let mut stdout = io::stdout().lock();
        match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
            Ok(()) => Ok(()),
            // A reader that went away (`| head`) is not an error of the command.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            Err(error) => Err(Failure {
                message: format!("cannot write to stdout: {error}"),
                exit_code: 1,
            }),
        }
    }
}

/// `text` on one line: control characters (from a node's free-text fields, say) escaped.
pub fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|character| {
            if character.is_control() {
                character.escape_default().collect::<Vec<_>>()
            } else {
                vec![character]
            }
        })
        .collect()
}
