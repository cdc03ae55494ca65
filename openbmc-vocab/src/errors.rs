//! `xyz.openbmc_project.Common.Error.*`, the error names OpenBMC services reply with.

/// Errors a property setter or method of ours returns, under OpenBMC's common error names.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "xyz.openbmc_project.Common.Error")]
pub enum CommonError {
    /// A D-Bus transport error.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The request is valid but not allowed now (e.g. a running state while power is off).
    NotAllowed(String),
    /// The argument is not acceptable.
    InvalidArgument(String),
    /// The operation failed for an internal reason.
    InternalFailure(String),
}
