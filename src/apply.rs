//! The transaction: observe the kernel, plan, execute; on any failure undo what
//! was done, newest first, so the kernel ends exactly where it started.

use crate::config::model::NetworkConfig;
use crate::kernel::{KernelError, NetworkBackend};
use crate::plan::Step;
use crate::plan::network::{self, PlanError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{error}; the {undone} change(s) made before it were undone")]
    RolledBack { error: KernelError, undone: usize },
    #[error(
        "{error}; undoing the changes made before it failed as well ({}), so the kernel is part-way",
        undo_failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    UndoFailed {
        error: KernelError,
        undo_failures: Vec<KernelError>,
    },
}

/// The steps that would bring the kernel to `config`. `previous` is the
/// configuration applied last time, whose addresses are handed back from
/// interfaces the new one no longer names.
pub async fn plan_network<B: NetworkBackend>(
    backend: &mut B,
    config: &NetworkConfig,
    previous: Option<&NetworkConfig>,
) -> Result<Vec<Step>, ApplyError> {
    let observed = backend.observe().await?;
    let desired = network::desired(config, previous, &observed.state)?;
    Ok(network::diff(&observed.state, &desired))
}

/// Executes `steps` in order; on the first failure, executes the inverses of the
/// steps already done in reverse order and reports what failed.
pub async fn execute<B: NetworkBackend>(backend: &mut B, steps: &[Step]) -> Result<(), ApplyError> {
    for (index, step) in steps.iter().enumerate() {
        let Err(error) = backend.execute(&step.op).await else {
            continue;
        };
        tracing::warn!(%error, step = %step, "apply failed; undoing {index} step(s)");
        let mut undo_failures = Vec::new();
        for done in steps[..index].iter().rev() {
            if let Err(undo_error) = backend.execute(&done.op.inverse()).await {
                undo_failures.push(undo_error);
            }
        }
        return Err(if undo_failures.is_empty() {
            ApplyError::RolledBack {
                error,
                undone: index,
            }
        } else {
            ApplyError::UndoFailed {
                error,
                undo_failures,
            }
        });
    }
    Ok(())
}
