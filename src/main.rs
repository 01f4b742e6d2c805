//! The `remit` binary. The only place where errors become exit codes.

/// Set for a command that may end quietly when the reader of its output goes away.
static QUIET_ON_CLOSED_PIPE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        // The reader of our output went away (`remit user list | head -1`): end quietly, as
        // a program killed by SIGPIPE does (Rust ignores the signal, so println! panics).
        if QUIET_ON_CLOSED_PIPE.load(std::sync::atomic::Ordering::SeqCst)
            && message.starts_with("failed printing to std")
            && message.contains("Broken pipe")
        {
            std::process::exit(141);
        }
        eprintln!("remit: internal error: {message}");
    }));
    remit::config::load_dotenv(std::path::Path::new(".env"));
    // Libraries are capped at warn whatever RUST_LOG says: at debug, ureq would log the
    // simulator's callback URL, which carries the M-Pesa callback secret.
    env_logger::Builder::new()
        .parse_filters(&log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        .filter_module("ureq", log::LevelFilter::Warn)
        .filter_module("ureq_proto", log::LevelFilter::Warn)
        .filter_module("tiny_http", log::LevelFilter::Warn)
        .filter_module("r2d2", log::LevelFilter::Warn)
        .format_timestamp_millis()
        .init();
    remit::config::warn_if_dotenv_readable(std::path::Path::new(".env"));
    let cli = remit::cli::Cli::from_command_line();
    QUIET_ON_CLOSED_PIPE.store(
        cli.may_end_on_a_closed_pipe(),
        std::sync::atomic::Ordering::SeqCst,
    );
    let code = match remit::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("remit: {}", remit::cli::describe(&e));
            2
        }
    };
    std::process::exit(code);
}

/// The log filter from `RUST_LOG`: `info` when it is unset or blank, and `info` for every
/// module it does not name when it names no level for all (`remit::access=warn` alone would
/// otherwise silence every other line, warnings included; so would a typo such as `warning`).
fn log_filter(rust_log: Option<&str>) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => "info".into(),
        Some(spec)
            if spec
                .split(',')
                .any(|d| LEVELS.contains(&d.trim().to_ascii_lowercase().as_str())) =>
        {
            spec.into()
        }
        Some(spec) => format!("info,{spec}"),
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn a_module_level_alone_keeps_info_for_the_rest_and_a_typo_is_info() {
        assert_eq!(log_filter(None), "info");
        assert_eq!(log_filter(Some("  ")), "info");
        assert_eq!(log_filter(Some("debug")), "debug");
        assert_eq!(
            log_filter(Some("WARN,remit::store=debug")),
            "WARN,remit::store=debug"
        );
        assert_eq!(
            log_filter(Some("remit::access=warn")),
            "info,remit::access=warn"
        );
        assert_eq!(log_filter(Some("warning")), "info,warning");
    }
}
