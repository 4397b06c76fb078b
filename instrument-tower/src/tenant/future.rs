//! [`ResponseFuture`] of the tenant layer: no box, no `async` block.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use opentelemetry::context::WithContext;
use pin_project::pin_project;

/// The response future of [`Tenant`](super::Tenant).
#[pin_project]
#[derive(Debug)]
pub struct ResponseFuture<F, B> {
    #[pin]
    state: State<F, B>,
}

#[pin_project(project = StateProj)]
#[derive(Debug)]
enum State<F, B> {
    /// The inner service's future, polled with the request's tenant context attached.
    Served(#[pin] WithContext<F>),
    /// An exempt path, or a tenant already in the context the future is polled in:
    /// the inner future as it is.
    Passed(#[pin] F),
    /// Refused before reaching the service.
    Refused(Option<Response<B>>),
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn served(future: WithContext<F>) -> Self {
        Self {
            state: State::Served(future),
        }
    }

    pub(crate) fn passed(future: F) -> Self {
        Self {
            state: State::Passed(future),
        }
    }

    pub(crate) fn refused(response: Response<B>) -> Self {
        Self {
            state: State::Refused(Some(response)),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Served(future) => future.poll(cx),
            StateProj::Passed(future) => future.poll(cx),
            StateProj::Refused(response) => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled again after completion: stay pending rather than panic.
                None => Poll::Pending,
            },
        }
    }
}
