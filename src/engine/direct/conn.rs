//! One client connection of the direct engine: its socket, the request it carries (if any),
//! and the parser state of that request's response, all reused from request to request.

use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::backend::Wire;

use socket2::{Domain, Protocol, Socket, Type};

use crate::engine::exchange::StreamState;
use crate::proto::ResponseParser;

/// What a completion belongs to: the connection slot, the slot's generation when the operation
/// was queued (a closed connection's late completions carry an old one and are ignored), and
/// the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tag {
    pub slot: u32,
    pub gen: u32,
    pub op: Op,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Connect = 1,
    Send = 2,
    Recv = 3,
}

const GEN_BITS: u32 = 24;
pub(super) const GEN_MASK: u32 = (1 << GEN_BITS) - 1;

impl Tag {
    pub(super) fn encode(self) -> u64 {
        (self.slot as u64) << 32 | ((self.gen & GEN_MASK) as u64) << 8 | self.op as u64
    }

    pub(super) fn decode(user_data: u64) -> Option<Tag> {
        let op = match user_data & 0xff {
            1 => Op::Connect,
            2 => Op::Send,
            3 => Op::Recv,
            _ => return None,
        };
        Some(Tag {
            slot: (user_data >> 32) as u32,
            gen: (user_data >> 8) as u32 & GEN_MASK,
            op,
        })
    }
}

/// The request a connection is carrying.
pub(super) struct Job {
    /// Index of the request in the running phase.
    pub k: usize,
    /// When the request started (its record's `start_ns`); kept across a retry.
    pub start: Instant,
    /// When the last byte of its response arrived (`start` until one has), for the stall
    /// timeout.
    pub last_byte: Instant,
    /// Bytes of the request the kernel has accepted.
    pub sent: usize,
    /// Bytes of the response received so far.
    pub received: u64,
    /// A reused connection that fails before any response byte is retried once on a fresh one.
    pub may_retry: bool,
    /// A later conversation turn: its bytes are in the driver's live buffer of this index.
    pub live: Option<u32>,
}

pub(super) struct Conn {
    pub sock: Option<Socket>,
    pub gen: u32,
    pub connecting: bool,
    pub connected: bool,
    /// A multishot receive is armed on the socket.
    pub recv_armed: bool,
    /// A send is in flight.
    pub sending: bool,
    pub job: Option<Job>,
    pub parser: ResponseParser,
    pub stream: StreamState,
}

impl Conn {
    pub(super) fn new(now: Instant, wire: Wire) -> Conn {
        Conn {
            sock: None,
            gen: 0,
            connecting: false,
            connected: false,
            recv_armed: false,
            sending: false,
            job: None,
            parser: {
                let mut p = ResponseParser::new();
                p.set_streamed(wire.streamed);
                p
            },
            stream: StreamState::new(now, wire),
        }
    }

    pub(super) fn fd(&self) -> i32 {
        self.sock.as_ref().map_or(-1, |s| s.as_raw_fd())
    }

    pub(super) fn tag(&self, slot: usize, op: Op) -> u64 {
        Tag {
            slot: slot as u32,
            gen: self.gen,
            op,
        }
        .encode()
    }

    /// Connected, open and carrying nothing.
    pub(super) fn is_idle(&self) -> bool {
        self.connected && self.job.is_none() && self.sock.is_some()
    }

    /// A fresh non-blocking socket for `addr`, not yet connected.
    pub(super) fn open(&mut self, addr: SocketAddr) -> std::io::Result<()> {
        let sock = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        // Requests are written in one go; Nagle would only delay the last segment.
        let _ = sock.set_nodelay(true);
        self.sock = Some(sock);
        Ok(())
    }

    /// Close the socket. Operations still in flight on it end (a pending receive sees the
    /// shutdown) and their completions, tagged with the old generation, are ignored.
    pub(super) fn close(&mut self) {
        if let Some(s) = self.sock.take() {
            // The ring holds its own reference to the socket while an operation is pending:
            // shutting it down is what ends those operations and tells the server.
            let _ = s.shutdown(Shutdown::Both);
        }
        self.gen = self.gen.wrapping_add(1) & GEN_MASK;
        self.connecting = false;
        self.connected = false;
        self.recv_armed = false;
        self.sending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_reject_unknown_ops() {
        for (slot, gen, op) in [
            (0, 0, Op::Connect),
            (77, GEN_MASK, Op::Recv),
            (u32::MAX, 5, Op::Send),
        ] {
            let t = Tag { slot, gen, op };
            assert_eq!(Tag::decode(t.encode()), Some(t));
        }
        assert_eq!(Tag::decode(0), None);
        assert_eq!(Tag::decode(0xff), None);
    }
}
