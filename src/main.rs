//! The `remit` binary: opens (or creates) the database, migrates it, bootstraps the key.

fn main() {
    let path = std::env::var("REMIT_DB").unwrap_or_else(|_| "remit.db".into());
    let mut options = remit::store::OpenOptions::new(&path);
    options.key_hex = std::env::var("ENCRYPTION_KEY").ok();
    match remit::store::open(&options) {
        Ok(store) => {
            println!(
                "database {} at schema version {}",
                path,
                remit::store::latest_schema_version()
            );
            println!("key: {:?}", store.key_source());
        }
        Err(e) => {
            eprintln!("remit: {e}");
            std::process::exit(2);
        }
    }
}
