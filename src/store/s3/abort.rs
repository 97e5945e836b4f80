//! A multipart upload that is never left half-done: aborted when dropped unfinished.

use object_store::WriteMultipart;

/// A multipart upload in flight, aborted in the background if it is dropped unfinished (the
/// request future was cancelled) and aborted on the spot by [`AbortOnDrop::abort`].
pub(super) struct AbortOnDrop(pub(super) Option<WriteMultipart>);

impl AbortOnDrop {
    pub(super) fn writer(&mut self) -> &mut WriteMultipart {
        self.0.as_mut().expect("upload taken only at the end")
    }

    pub(super) fn take(&mut self) -> WriteMultipart {
        self.0.take().expect("upload taken once")
    }

    pub(super) async fn abort(mut self) {
        if let Some(writer) = self.0.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(error = %e, "aborting a multipart upload failed");
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, "aborting a multipart upload failed");
                }
            });
        }
    }
}
