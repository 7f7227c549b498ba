//! The shell's state: where data lives, and the engine once it is open. Reached from
//! commands as `State<Desktop>` and from everything else through [`DesktopExt`].

use std::path::PathBuf;
use std::sync::Arc;

use airlock_workspace::{Opened, Setup};
use tauri::{Manager, Runtime};
use tokio::sync::watch;

use crate::locations::{LocationError, Locations};
use crate::wire::{CommandError, ErrorCode};

/// Process-wide state placed in Tauri's state by [`crate::run_app`].
pub struct Desktop {
    /// Where the database and workspace are, or why they could not be resolved. Kept as a
    /// `Result` so a machine without a user data dir still opens a window that explains it.
    pub locations: Result<Locations, LocationError>,
    engine: watch::Sender<EngineSlot>,
}

/// The engine as the app sees it: still opening, open, or not openable (with the reason).
#[derive(Clone)]
pub enum EngineSlot {
    Opening,
    Ready(Arc<Airlock>),
    Failed(Arc<str>),
}

/// An open engine and the setup it was assembled from (the setup answers workspace
/// questions: its workflows and servers file).
pub struct Airlock {
    pub setup: Setup,
    pub opened: Opened,
}

impl Airlock {
    pub fn workspace(&self) -> Option<&PathBuf> {
        self.setup.workspace.as_ref()
    }
}

impl Desktop {
    pub fn new(locations: Result<Locations, LocationError>) -> Self {
        Self {
            locations,
            engine: watch::Sender::new(EngineSlot::Opening),
        }
    }

    /// The open engine, waiting while it is still opening; the opening error otherwise.
    pub async fn airlock(&self) -> Result<Arc<Airlock>, CommandError> {
        let mut slot = self.engine.subscribe();
        let slot = slot
            .wait_for(|slot| !matches!(slot, EngineSlot::Opening))
            .await
            .map_err(|_| {
                CommandError::new(ErrorCode::Internal, "The engine stopped while opening.")
            })?;
        match &*slot {
            EngineSlot::Ready(airlock) => Ok(airlock.clone()),
            EngineSlot::Failed(reason) => Err(CommandError::new(
                ErrorCode::EngineUnavailable,
                reason.to_string(),
            )),
            EngineSlot::Opening => Err(CommandError::new(
                ErrorCode::Internal,
                "The engine is still opening.",
            )),
        }
    }

    /// The engine if it is open now (no waiting).
    pub fn ready(&self) -> Option<Arc<Airlock>> {
        match &*self.engine.borrow() {
            EngineSlot::Ready(airlock) => Some(airlock.clone()),
            EngineSlot::Opening | EngineSlot::Failed(_) => None,
        }
    }

    /// Records the outcome of opening the engine; commands waiting in [`Self::airlock`]
    /// carry on with it.
    pub fn set_engine(&self, slot: EngineSlot) {
        self.engine.send_replace(slot);
    }
}

/// The one way code outside commands reaches the shell's state from an app or window.
pub trait DesktopExt<R: Runtime> {
    fn desktop(&self) -> tauri::State<'_, Desktop>;
}

impl<R: Runtime, M: Manager<R>> DesktopExt<R> for M {
    fn desktop(&self) -> tauri::State<'_, Desktop> {
        self.state::<Desktop>()
    }
}
