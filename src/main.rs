//! The `remit` binary. The only place where errors become exit codes.

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        eprintln!("remit: internal error: {message}");
    }));
    remit::config::load_dotenv(std::path::Path::new(".env"));
    // Libraries are capped at warn whatever RUST_LOG says: at debug, ureq would log the
    // simulator's callback URL, which carries the M-Pesa callback secret.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .filter_module("ureq", log::LevelFilter::Warn)
        .filter_module("ureq_proto", log::LevelFilter::Warn)
        .filter_module("tiny_http", log::LevelFilter::Warn)
        .filter_module("r2d2", log::LevelFilter::Warn)
        .format_timestamp_millis()
        .init();
    let cli = remit::cli::Cli::from_command_line();
    let code = match remit::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("remit: {}", remit::cli::describe(&e));
            2
        }
    };
    std::process::exit(code);
}
