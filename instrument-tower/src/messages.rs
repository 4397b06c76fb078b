//! The messages of a streamed gRPC response, counted as they pass (opt-in:
//! [`InstrumentBuilder::record_messages`](crate::stack::InstrumentBuilder::record_messages)).
//!
//! A gRPC body is a sequence of length-prefixed messages (a flag byte, a four-byte
//! big-endian length, the message), cut into data frames anywhere. The layer reads
//! the prefixes across frames without copying a byte of the messages, and for each
//! message records its size in `rpc_server_response_size_bytes` and, for the first
//! [`MAX_MESSAGE_EVENTS`] of a call, an `rpc.message` event on the call's span; when the
//! call ends, the count in `rpc_server_responses_per_rpc`, and how many events were left
//! out, if any, as `instrument.rpc.message_events.dropped` on the span.
//!
//! Request messages are not counted: reading them would mean wrapping the request body,
//! which changes the body type every service below the layer is written for (tonic's
//! router takes its own). Unary and server-streaming calls have one request.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

use instrument_core::semconv::{
    EVENT_RPC_MESSAGE, LABEL_RPC_METHOD_FULL, LABEL_RPC_SYSTEM_NAME, LABEL_TENANT_ID,
    RPC_MESSAGE_COMPRESSED_SIZE, RPC_MESSAGE_EVENTS_DROPPED, RPC_MESSAGE_ID, RPC_MESSAGE_TYPE,
    RPC_MESSAGE_UNCOMPRESSED_SIZE, RPC_SERVER_RESPONSES_PER_RPC, RPC_SERVER_RESPONSE_SIZE,
};

/// Message events one span holds at most; the rest are counted in
/// `instrument.rpc.message_events.dropped`, so a stream that runs for hours cannot grow
/// its span without limit.
pub const MAX_MESSAGE_EVENTS: u32 = 32;

/// Where a reader of length-prefixed messages is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frames {
    /// In a prefix: how many of its five bytes were read, and the bytes.
    Prefix(u8, [u8; 5]),
    /// In a message: how many of its bytes are still to come.
    Message(u64),
}

impl Default for Frames {
    fn default() -> Self {
        Self::Prefix(0, [0; 5])
    }
}

/// A message's prefix: whether it is compressed, its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prefix {
    compressed: bool,
    len: u64,
}

impl Frames {
    /// Reads `chunk`, calling `message` with the prefix of each message as it starts.
    fn read(&mut self, mut chunk: &[u8], mut message: impl FnMut(Prefix)) {
        while !chunk.is_empty() {
            match self {
                Self::Message(left) => {
                    let take = (*left).min(chunk.len() as u64);
                    // `take` is at most `chunk.len()`.
                    chunk = &chunk[usize::try_from(take).unwrap_or(chunk.len())..];
                    *left -= take;
                    if *left == 0 {
                        *self = Self::default();
                    }
                }
                Self::Prefix(read, bytes) => {
                    let need = 5 - usize::from(*read);
                    let take = need.min(chunk.len());
                    let at = usize::from(*read);
                    bytes[at..at + take].copy_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    // `take` is at most 5.
                    *read += take as u8;
                    if *read == 5 {
                        let len =
                            u64::from(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]));
                        message(Prefix {
                            compressed: bytes[0] & 1 == 1,
                            len,
                        });
                        *self = if len == 0 {
                            Self::default()
                        } else {
                            Self::Message(len)
                        };
                    }
                }
            }
        }
    }
}

/// The conventions' `rpc_method` of a call's (service, method) labels.
pub(crate) fn grpc_method((service, method): (&str, &str)) -> String {
    if method == instrument_core::semconv::OTHER {
        method.to_owned()
    } else {
        format!("{service}/{method}")
    }
}

/// The response messages of one call: read from its body, recorded as they pass.
#[derive(Debug)]
pub(crate) struct Messages {
    frames: Frames,
    sent: u64,
    events: u32,
    tenant: String,
    /// The size histogram and the labels, made at the first message (the method is
    /// known to be implemented then).
    size: Option<(metrics::Histogram, Vec<metrics::Label>)>,
}

impl Messages {
    /// The messages of a call by `tenant`.
    pub(crate) fn new(tenant: String) -> Self {
        Self {
            frames: Frames::default(),
            sent: 0,
            events: 0,
            tenant,
            size: None,
        }
    }

    fn labels(tenant: &str, method: String) -> Vec<metrics::Label> {
        vec![
            metrics::Label::from_static_parts(LABEL_RPC_SYSTEM_NAME, "grpc"),
            metrics::Label::new(LABEL_RPC_METHOD_FULL, method),
            metrics::Label::new(LABEL_TENANT_ID, tenant.to_owned()),
        ]
    }

    /// A data frame of the response: the messages starting in it are counted, sized and
    /// (up to the cap) recorded on the span of `cx`; `method` names the call at the
    /// first.
    pub(crate) fn data(&mut self, chunk: &[u8], cx: &Context, method: impl FnOnce() -> String) {
        let Self {
            frames,
            sent,
            events,
            tenant,
            size,
        } = self;
        let mut method = Some(method);
        frames.read(chunk, |prefix| {
            *sent += 1;
            let (histogram, _) = size.get_or_insert_with(|| {
                let method = method.take().map_or_else(String::new, |m| m());
                let labels = Self::labels(tenant, method);
                (
                    metrics::histogram!(RPC_SERVER_RESPONSE_SIZE, labels.clone()),
                    labels,
                )
            });
            histogram.record(prefix.len as f64);
            if *events < MAX_MESSAGE_EVENTS {
                *events += 1;
                let size_key = if prefix.compressed {
                    RPC_MESSAGE_COMPRESSED_SIZE
                } else {
                    RPC_MESSAGE_UNCOMPRESSED_SIZE
                };
                cx.span().add_event(
                    EVENT_RPC_MESSAGE,
                    vec![
                        KeyValue::new(RPC_MESSAGE_TYPE, "SENT"),
                        KeyValue::new(RPC_MESSAGE_ID, i64::try_from(*sent).unwrap_or(i64::MAX)),
                        KeyValue::new(size_key, i64::try_from(prefix.len).unwrap_or(i64::MAX)),
                    ],
                );
            }
        });
    }

    /// The call ended: its message count (labelled as the messages, or by `method`
    /// when it sent none; a call to no known method is not counted), and the events
    /// left out on the span of `cx`.
    pub(crate) fn finish(self, cx: &Context, method: impl FnOnce() -> String) {
        let labels = match self.size {
            Some((_, labels)) => Some(labels),
            // A call the service did not recognise (`UNIMPLEMENTED`, a made-up method)
            // streamed nothing and is no RPC of the service: not counted.
            None => Some(method())
                .filter(|m| m != instrument_core::semconv::OTHER)
                .map(|m| Self::labels(&self.tenant, m)),
        };
        if let Some(labels) = labels {
            metrics::histogram!(RPC_SERVER_RESPONSES_PER_RPC, labels).record(self.sent as f64);
        }
        let dropped = self.sent.saturating_sub(u64::from(self.events));
        if dropped > 0 {
            cx.span().set_attribute(KeyValue::new(
                RPC_MESSAGE_EVENTS_DROPPED,
                i64::try_from(dropped).unwrap_or(i64::MAX),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(messages: &[(bool, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (compressed, message) in messages {
            body.push(u8::from(*compressed));
            body.extend_from_slice(&(message.len() as u32).to_be_bytes());
            body.extend_from_slice(message);
        }
        body
    }

    proptest! {
        /// However the body is cut into frames, every message is seen once, with its
        /// length and flag, when its prefix is complete.
        #[test]
        fn every_message_is_read_once_however_the_frames_are_cut(
            messages in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
            cuts in proptest::collection::vec(1usize..64, 0..200),
        ) {
            let body = framed(&messages);
            let mut frames = Frames::default();
            let mut seen = Vec::new();
            let mut rest = &body[..];
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                frames.read(&rest[..n], |p| seen.push((p.compressed, p.len)));
                rest = &rest[n..];
            }
            let expected: Vec<(bool, u64)> =
                messages.iter().map(|(c, m)| (*c, m.len() as u64)).collect();
            prop_assert_eq!(seen, expected);
            prop_assert_eq!(frames, Frames::default());
        }

        /// Garbage never panics, whatever it claims as lengths.
        #[test]
        fn any_bytes_are_read_without_panic(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut frames = Frames::default();
            frames.read(&body, |_| {});
        }
    }
}
