//! [`ResponseFuture`] of the request-metrics layer: the measurement is handed to the
//! response body, or finished when the service fails or the future is dropped. No box.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project::{pin_project, pinned_drop};
use tower_http::classify::ClassifyResponse;

use super::measure::Measure;
use crate::body::{Head, Observe as _, Outcome, ResponseBody};
use crate::classify::Verdict;

/// The response future of [`RequestMetrics`](super::RequestMetrics). Dropped before the
/// response, it records the request as `cancelled`.
#[pin_project(PinnedDrop)]
pub struct ResponseFuture<F, C> {
    #[pin]
    future: F,
    /// `None` for a request the filter skips, and once finished.
    measure: Option<(Measure, C)>,
    passed: bool,
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("measured", &self.measure.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn measured(future: F, measure: Measure, classifier: C) -> Self {
        Self {
            future,
            measure: Some((measure, classifier)),
            passed: false,
        }
    }

    pub(crate) fn passed(future: F) -> Self {
        Self {
            future,
            measure: None,
            passed: true,
        }
    }
}

impl<F, B, E, C> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display + 'static,
    B: http_body::Body,
    C: ClassifyResponse,
    C::FailureClass: fmt::Display,
{
    type Output = Result<Response<ResponseBody<B, Measure, C::ClassifyEos>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        if *this.passed {
            return Poll::Ready(result.map(ResponseBody::unobserved));
        }
        let Some((measure, classifier)) = this.measure.take() else {
            // Polled after completion: stay pending rather than panic.
            return Poll::Pending;
        };
        Poll::Ready(match result {
            Ok(response) => {
                let head = Head::of(measure.protocol(), &response);
                let verdict = Verdict::of(classifier, &response);
                Ok(ResponseBody::wrap(response, head, verdict, measure))
            }
            Err(e) => {
                let failure = classifier.classify_error(&e).to_string();
                measure.finish(&Outcome::Failed(failure));
                Err(e)
            }
        })
    }
}

#[pinned_drop]
impl<F, C> PinnedDrop for ResponseFuture<F, C> {
    fn drop(self: Pin<&mut Self>) {
        if let Some((measure, _)) = self.project().measure.take() {
            measure.finish(&Outcome::Cancelled);
        }
    }
}
