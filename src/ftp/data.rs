//! A data connection of the FTP server and what it carries: an upload coming in or a listing
//! going out. The server owns the sockets' slots; this is what one of them holds.

use std::time::Instant;

use super::jobs::ConnRef;
use super::stream::Stream;
use super::upload::Upload;

/// What a data connection is for.
pub enum Task {
    Upload(Upload),
    Send(Vec<u8>),
}

pub struct DataConn {
    pub owner: ConnRef,
    pub stream: Stream,
    /// An active-mode connect still in progress.
    pub connecting: bool,
    pub task: Option<Task>,
    pub last_active: Instant,
    /// A listing is out: close once the socket took it.
    pub closing: bool,
}
