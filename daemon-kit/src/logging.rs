//! Logging: the journal with structured fields under systemd, stderr otherwise.

use log::LevelFilter;

/// Install the logger. `ACPIGATE_LOG` (error|warn|info|debug|trace) sets the level.
pub fn init(identifier: &str) {
    let level = std::env::var("ACPIGATE_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Info);
    if systemd_journal_logger::connected_to_journal()
        && let Ok(logger) = systemd_journal_logger::JournalLog::new()
        && logger
            .with_syslog_identifier(identifier.to_owned())
            .install()
            .is_ok()
    {
        log::set_max_level(level);
        return;
    }
    let _ = log::set_boxed_logger(Box::new(StderrLogger {
        identifier: identifier.to_owned(),
    }));
    log::set_max_level(level);
}

struct StderrLogger {
    identifier: String,
}

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        // Structured key-values (record.key_values()) go to the journal as fields; on stderr we
        // print them after the message so tests and people see the same facts.
        let mut kv = String::new();
        let _ = record.key_values().visit(&mut KvWriter(&mut kv));
        eprintln!(
            "{} {}: {}{}",
            self.identifier,
            record.level(),
            record.args(),
            kv
        );
    }
    fn flush(&self) {}
}

struct KvWriter<'a>(&'a mut String);

impl<'kvs> log::kv::VisitSource<'kvs> for KvWriter<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        use std::fmt::Write;
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}
