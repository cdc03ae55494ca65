//! ipmi-handlers: the IPMI command server behind xyz.openbmc_project.Ipmi.Server (issue 5).
