//! Edge plumbing shared by the acpigate daemons. Nothing here makes a policy decision.

pub mod bus;
pub mod config;
pub mod logging;
pub mod order;
pub mod startup;
pub mod state_file;
pub mod supervisor;
pub mod time;
pub mod watch;
