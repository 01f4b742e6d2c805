//! The `remit` binary. The only place where errors become exit codes.

/// Set for a command that may end quietly when the reader of its output goes away.
static QUIET_ON_CLOSED_PIPE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn main() {
    // A file-size limit (`ulimit -f`, `prlimit --fsize`) that a write of the ledger's files
    // reaches raises SIGXFSZ, whose default ends the process without a word, an answer or a
    // log line. Caught, the write fails instead (EFBIG, an I/O error to SQLite): answered 500,
    // said in the log (which names a limit on the size of files among the causes) and by
    // `/health` (`not_writable`), and a command exits 2 saying so. Nothing is lost either way,
    // but the server stays up and says why.
    if let Err(e) = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ) {
        remit::say!("remit: cannot catch SIGXFSZ ({e}); a file-size limit would end the process");
    }
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
        // Any other failed write of our output (`> /dev/full`, a disk that filled): a sentence
        // and the usual exit code of a failure, not a panic's 101. What the command changed
        // before it printed stays changed.
        if message.starts_with("failed printing to stderr")
            && std::thread::current().name() == Some("main")
        {
            // A command's sentence that cannot be said: the failure's code, quietly.
            std::process::exit(2);
        }
        if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
            remit::say!("remit: cannot write to standard output ({cause}); if the command changes anything, what it changed before it printed is done");
            std::process::exit(2);
        }
        // Which thread, and where: a background thread that ends this way is named by
        // `/health` too, and the line is what an operator sends with the report.
        let thread = std::thread::current();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        remit::say!(
            "remit: internal error in thread {}{at}: {message}",
            thread.name().unwrap_or("unnamed")
        );
    }));
    let dotenv = remit::config::load_dotenv(std::path::Path::new(".env"));
    // Libraries are capped at warn whatever RUST_LOG says: at debug, ureq would log the
    // simulator's callback URL, which carries the M-Pesa callback secret, and the requests'
    // headers (Daraja's and the SMS gateway's credentials). `log_filter` drops what RUST_LOG
    // says of them, their modules included (a directive for `ureq::run` outranked the cap).
    let mut logger = env_logger::Builder::new();
    logger.parse_filters(&log_filter(std::env::var("RUST_LOG").ok().as_deref()));
    for library in CAPPED_LIBRARIES {
        logger.filter_module(library, log::LevelFilter::Warn);
    }
    logger.format_timestamp_millis().init();
    remit::config::warn_if_dotenv_readable(std::path::Path::new(".env"));
    remit::config::warn_of_unknown_settings();
    let cli = remit::cli::Cli::from_command_line();
    // Said after the command line is read, so that `--help` still answers.
    if let Err(sentence) = dotenv {
        remit::say!("remit: {sentence}");
        std::process::exit(2);
    }
    QUIET_ON_CLOSED_PIPE.store(
        cli.may_end_on_a_closed_pipe(),
        std::sync::atomic::Ordering::SeqCst,
    );
    let code = match remit::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            remit::say!("remit: {}", remit::error::describe(&e));
            2
        }
    };
    std::process::exit(code);
}

/// The log filter from `RUST_LOG`: `info` when it is unset or blank, and `info` for every
/// module it does not name when it names no level for all (`remit::access=warn` alone would
/// otherwise silence every other line, warnings included; so would a typo such as `warning`).
/// Libraries whose log stays at warn and above, whatever RUST_LOG says of them: at debug,
/// `tokio_postgres` logs every replicated row's parameters (references, M-Pesa's words) and
/// `rustls` the handshakes.
const CAPPED_LIBRARIES: [&str; 8] = [
    "ureq",
    "ureq_proto",
    "tiny_http",
    "r2d2",
    "postgres",
    "tokio_postgres",
    "tokio_postgres_rustls",
    "rustls",
];

fn log_filter(rust_log: Option<&str>) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    // What RUST_LOG says of a capped library or one of its modules is left out: a directive
    // for a module outranks the cap on its library.
    let kept = rust_log.map(|spec| {
        let (directives, regex) = match spec.split_once('/') {
            Some((d, r)) => (d, Some(r)),
            None => (spec, None),
        };
        let directives = directives
            .split(',')
            .filter(|d| {
                // A directive applies to every module whose path begins with its name
                // (`ureq:` and `ureq::run` as much as `ureq`): one whose name begins a capped
                // library's path, or begins with it, is dropped. A bare level names nothing.
                let name = match d.split_once('=') {
                    Some((name, _)) => name.trim(),
                    None if LEVELS.contains(&d.trim().to_ascii_lowercase().as_str()) => "",
                    None => d.trim(),
                };
                name.is_empty()
                    || !CAPPED_LIBRARIES.iter().any(|library| {
                        library.starts_with(name)
                            || name
                                .strip_prefix(library)
                                .is_some_and(|rest| rest.starts_with(':'))
                    })
            })
            .collect::<Vec<_>>()
            .join(",");
        match regex {
            Some(regex) => format!("{directives}/{regex}"),
            None => directives,
        }
    });
    match kept.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => "info".into(),
        Some(spec)
            if spec.split(',').any(|d| {
                let d = d.split('/').next().unwrap_or("");
                LEVELS.contains(&d.trim().to_ascii_lowercase().as_str())
            }) =>
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

    /// Guards against: `ureq::run=trace` outranked the cap on `ureq` and logged the callback
    /// URL with its secret.
    #[test]
    fn what_rust_log_says_of_a_capped_library_or_its_modules_is_left_out() {
        assert_eq!(
            log_filter(Some(
                "trace,ureq::run=trace,ureq_proto::util=trace,ureq=debug"
            )),
            "trace"
        );
        assert_eq!(
            log_filter(Some("remit=debug,tiny_http,r2d2::pool=trace")),
            "info,remit=debug"
        );
        assert_eq!(log_filter(Some("ureq=trace")), "info");
        // Replication's rows, at debug, are its parameters.
        assert_eq!(
            log_filter(Some("debug,tokio_postgres::query=trace,rustls=debug")),
            "debug"
        );
        assert_eq!(log_filter(Some("debug,ureqx=trace")), "debug,ureqx=trace");
        assert_eq!(log_filter(Some("debug,ureq::run=trace/abc")), "debug/abc");
        // Guards against: `ureq:` (a prefix of every ureq module's path) outranked the cap.
        assert_eq!(
            log_filter(Some("info,ureq:=trace,tiny=debug,r2=trace,remit=debug")),
            "info,remit=debug"
        );
    }
}
