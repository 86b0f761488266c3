//! The state requests are served with, replaceable while the proxy runs.
//!
//! Each request takes the state current when it arrives and keeps it to the end, so a reload
//! changes what new requests see without touching one in flight, and no connection has to
//! be closed for it.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::app::App;

pub struct Live(ArcSwap<App>);

impl Live {
    pub fn new(app: Arc<App>) -> Arc<Live> {
        Arc::new(Live(ArcSwap::new(app)))
    }

    /// The state for a request arriving now.
    pub fn app(&self) -> Arc<App> {
        self.0.load_full()
    }

    /// From now on new requests are served with `app`.
    pub fn replace(&self, app: Arc<App>) {
        self.0.store(app);
    }
}
