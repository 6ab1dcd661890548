//! Sans-IO HTTP/1.1: request encoding, response framing (Content-Length,
//! chunked, to-EOF), and the tiny server-side request-head parser.

pub mod request;
pub mod response;
pub mod server;
