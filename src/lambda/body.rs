//! Handing the invocation body to the handler as the runtime received it.
//!
//! `lambda_runtime` deserializes the body into the handler's payload type
//! before calling it. For a batch event that is a full scan of several
//! megabytes (and, into a `RawValue`, a copy), only for the bridge to parse
//! the same bytes again. [`TakeBodyLayer`] sits outside the runtime's
//! deserializer: it parks each invocation's body in [`Bodies`] under its
//! request id and lets the runtime deserialize `null` instead (the handler's
//! payload type is `serde::de::IgnoredAny`). The handler then takes the
//! bytes back by request id: the same allocation, never copied or scanned.
//!
//! Keyed by request id rather than "the current one": `lambda_runtime` runs
//! invocations one at a time by default, but not with
//! `AWS_LAMBDA_MAX_CONCURRENCY` (managed instances), and a key makes a mix-up
//! impossible rather than unlikely.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaInvocation;

/// What the runtime's deserializer gets instead of the event.
const PLACEHOLDER: &[u8] = b"null";

/// Invocation bodies waiting for their handler, by request id.
#[derive(Clone, Default)]
pub struct Bodies {
    waiting: Arc<Mutex<HashMap<String, Bytes>>>,
}

impl Bodies {
    /// The body of invocation `request_id`, once: `None` if it was never
    /// parked or was already taken.
    pub fn take(&self, request_id: &str) -> Option<Bytes> {
        self.lock().remove(request_id)
    }

    fn park(&self, request_id: &str, body: Bytes) {
        self.lock().insert(request_id.to_owned(), body);
    }

    /// Bodies parked and not yet taken (tests: nothing may be left behind).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        // The map stays consistent even if a holder panicked: every
        // critical section is a single insert or remove.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A tower layer for `lambda_runtime::Runtime::layer`: see the module docs.
pub struct TakeBodyLayer {
    bodies: Bodies,
}

impl TakeBodyLayer {
    pub fn new(bodies: Bodies) -> TakeBodyLayer {
        TakeBodyLayer { bodies }
    }
}

impl<S> Layer<S> for TakeBodyLayer {
    type Service = TakeBody<S>;

    fn layer(&self, inner: S) -> TakeBody<S> {
        TakeBody {
            inner,
            bodies: self.bodies.clone(),
        }
    }
}

/// The service [`TakeBodyLayer`] builds.
pub struct TakeBody<S> {
    inner: S,
    bodies: Bodies,
}

/// What [`TakeBody`] needs of a request: [`LambdaInvocation`] in the
/// runtime, a plain struct in the tests (an `http` response head cannot be
/// built without the `http` crate).
pub trait Invocation {
    fn request_id(&self) -> &str;
    fn body_mut(&mut self) -> &mut Bytes;
}

impl Invocation for LambdaInvocation {
    fn request_id(&self) -> &str {
        &self.context.request_id
    }
    fn body_mut(&mut self) -> &mut Bytes {
        &mut self.body
    }
}

impl<S, R> Service<R> for TakeBody<S>
where
    S: Service<R>,
    R: Invocation,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Parked<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: R) -> Self::Future {
        let request_id = invocation.request_id().to_owned();
        let body = std::mem::replace(invocation.body_mut(), Bytes::from_static(PLACEHOLDER));
        self.bodies.park(&request_id, body);
        let cleanup = Unpark {
            bodies: self.bodies.clone(),
            request_id,
        };
        Parked {
            inner: Box::pin(self.inner.call(invocation)),
            _cleanup: cleanup,
        }
    }
}

/// The inner service's future; when it ends (or is dropped), a body the
/// handler never took (it failed before, or was never called) is dropped
/// with it instead of staying in the map.
pub struct Parked<F> {
    inner: Pin<Box<F>>,
    _cleanup: Unpark,
}

impl<F: Future> Future for Parked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        self.inner.as_mut().poll(cx)
    }
}

struct Unpark {
    bodies: Bodies,
    request_id: String,
}

impl Drop for Unpark {
    fn drop(&mut self) {
        self.bodies.take(&self.request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::tower::service_fn;

    struct Inv {
        request_id: String,
        body: Bytes,
    }

    impl Invocation for Inv {
        fn request_id(&self) -> &str {
            &self.request_id
        }
        fn body_mut(&mut self) -> &mut Bytes {
            &mut self.body
        }
    }

    fn invocation(request_id: &str, body: &'static [u8]) -> Inv {
        Inv {
            request_id: request_id.to_owned(),
            body: Bytes::from_static(body),
        }
    }

    #[tokio::test]
    async fn the_inner_service_sees_null_and_the_body_waits_under_its_request_id() {
        let bodies = Bodies::default();
        let seen = bodies.clone();
        let inner = service_fn(move |inv: Inv| {
            let taken = seen.take(&inv.request_id);
            let other = seen.take("someone-else");
            async move { Ok::<_, std::convert::Infallible>((inv.body, taken, other)) }
        });
        let mut svc = TakeBodyLayer::new(bodies.clone()).layer(inner);
        let event: &'static [u8] = br#"{"Records":[{"k":"caf\u00e9 \"q\" \\ \u2603"}]}"#;
        let (placeholder, taken, other) = svc.call(invocation("r-1", event)).await.unwrap();
        assert_eq!(&placeholder[..], PLACEHOLDER);
        let taken = taken.expect("the handler finds the body under its request id");
        assert_eq!(&taken[..], event);
        // The same allocation, not a copy.
        assert_eq!(taken.as_ptr(), event.as_ptr());
        assert!(other.is_none());
        assert!(bodies.is_empty());
    }

    #[tokio::test]
    async fn a_body_the_handler_never_took_is_not_kept() {
        let bodies = Bodies::default();
        let inner = service_fn(|_inv: Inv| async { Err::<(), _>("failed before taking the body") });
        let mut svc = TakeBodyLayer::new(bodies.clone()).layer(inner);
        assert!(svc.call(invocation("r-2", b"{}")).await.is_err());
        assert!(bodies.is_empty());
        // Dropped before it ran at all.
        let pending = svc.call(invocation("r-3", b"{}"));
        assert_eq!(bodies.len(), 1);
        drop(pending);
        assert!(bodies.is_empty());
    }
}
