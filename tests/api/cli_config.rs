//! Configuration precedence on the real binary: flags over environment over a `.env` file in
//! the working directory over the defaults.

use crate::support::process::remit;
use crate::support::TEST_KEY;
use std::io::BufRead;
use std::process::Stdio;

/// Starts `remit` in `dir` with `args`, returns the "listening" line, and stops it.
fn listening_line(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = remit(dir, None);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("remit listening on"))
        .unwrap_or_default();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    line
}

/// The server's log once every line of its start is in: the start's last line says the
/// callback token was generated.
fn start_lines(server: &crate::support::process::Server) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.contains("REMIT_MPESA_CALLBACK_TOKEN is not set") {
            return log;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_dotenv_file_configures_and_flags_and_the_environment_win_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        format!("# kiosk settings\nREMIT_DB=./from-dotenv.db\nREMIT_ADDR=127.0.0.1:0\nENCRYPTION_KEY={TEST_KEY}\n"),
    )
    .unwrap();
    let line = listening_line(dir.path(), &[], &[]);
    assert!(
        line.starts_with("remit listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        dir.path().join("from-dotenv.db").exists(),
        "REMIT_DB from .env"
    );
    assert!(
        !dir.path().join("from-dotenv.db.key").exists(),
        "ENCRYPTION_KEY from .env: no key file"
    );
    // The environment wins over .env, and a flag over both.
    listening_line(dir.path(), &[], &[("REMIT_DB", "./from-env.db")]);
    assert!(
        dir.path().join("from-env.db").exists(),
        "REMIT_DB from the environment"
    );
    listening_line(
        dir.path(),
        &["serve", "--db", "./from-flag.db"],
        &[("REMIT_DB", "./from-env.db")],
    );
    assert!(
        dir.path().join("from-flag.db").exists(),
        "--db from the flag"
    );
    assert!(
        !dir.path().join("remit.db").exists(),
        "the default was never used"
    );
}

/// A misspelt setting was ignored without a word, its default taken (`REMIT_METRICS_PUBILC=0`
/// left the metrics open, `REMIT_GATWAY=daraja` ran the simulator): each `REMIT_*` variable
/// remit does not know is named in a warning with the setting it is nearest to, never its value.
#[test]
fn a_misspelt_setting_is_named_with_the_one_it_is_nearest_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["user", "add", "--role", "agent", "--name", "Kiosk"])
        .env("REMIT_GATWAY", "daraja-secret-value")
        .env("REMIT_METRICS_PUBILC", "0")
        .env("REMIT_SOMETHING_ELSE_ENTIRELY", "1")
        .env("REMIT_ENCRYPTION_KEY", "00")
        .env("REMIT_PORT", "8080")
        .env("REMIT_GATEWAY", "simulator");
    // (No ledger here: the command stops at that, after the warnings.)
    let ran = crate::support::process::run(cmd);
    assert!(ran.stderr.contains("no database at"), "{ran}");
    for said in [
        "REMIT_GATWAY is not a remit setting and is ignored: did you mean REMIT_GATEWAY?",
        "REMIT_METRICS_PUBILC is not a remit setting and is ignored: did you mean REMIT_METRICS_PUBLIC?",
        "REMIT_SOMETHING_ELSE_ENTIRELY is not a remit setting and is ignored (README",
        // The two settings without the prefix, named with it.
        "REMIT_ENCRYPTION_KEY is not a remit setting and is ignored: did you mean ENCRYPTION_KEY?",
        "REMIT_PORT is not a remit setting and is ignored: did you mean PORT?",
    ] {
        assert!(ran.stderr.contains(said), "{said}: {ran}");
    }
    assert!(!ran.stderr.contains("REMIT_GATEWAY is not"), "{ran}");
    assert!(!ran.stderr.contains("daraja-secret-value"), "{ran}");
}

#[test]
fn a_dotenv_file_that_sets_a_setting_twice_is_refused_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let check_with = |dotenv: &str| {
        std::fs::write(dir.path().join(".env"), dotenv).unwrap();
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["check", "--db", "./none.db"]);
        crate::support::process::run(cmd)
    };
    // A shell sourcing the file takes the last value, remit took the first: `normal` here,
    // `bogus` there, and nothing said.
    let ran = check_with("REMIT_SYNCHRONOUS=normal\n# later\nexport REMIT_SYNCHRONOUS = bogus\n");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains(".env: REMIT_SYNCHRONOUS is set twice (lines 1 and 3)"),
        "{ran}"
    );
    // A quoted value over several lines is one setting, whatever its lines hold (a
    // certificate's base64 ends in `=`, and two of its lines may be the same).
    let ran = check_with(
        "REMIT_DARAJA_CERT=\"-----BEGIN CERTIFICATE-----\nAB==\nAB==\n-----END CERTIFICATE-----\"\nREMIT_SYNCHRONOUS=normal\n",
    );
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("no database at") && !ran.stderr.contains(".env"),
        "{ran}"
    );
    // Saved with Notepad's byte order mark: said so (it was "line 1 is not a setting" of a
    // line that looks right).
    let ran = check_with("\u{feff}REMIT_SYNCHRONOUS=normal\n");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains(".env begins with a byte order mark")
            && ran.stderr.contains("without one"),
        "{ran}"
    );
}

#[test]
fn a_dotenv_line_that_is_not_a_setting_stops_every_command_by_its_number_not_its_text() {
    let dir = tempfile::tempdir().unwrap();
    // Comments after a value, quotes and `export` are dotenv's; a line without `=` was skipped
    // before, leaving a mistyped gateway on the simulator's default.
    std::fs::write(
        dir.path().join(".env"),
        "# kiosk\nexport REMIT_DB='./quoted.db' # the ledger\nREMIT_ADDR=\"127.0.0.1:0\"\nREMIT_GATEWAY daraja-secret-word\n",
    )
    .unwrap();
    for args in [&["serve"][..], &["check"], &["user", "list"]] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        let ran = crate::support::process::run({
            cmd.args(args);
            cmd
        });
        assert_eq!(ran.code, Some(2), "{args:?}: {ran}");
        assert!(
            ran.stderr
                .contains(".env: line 4 is not a setting (KEY=VALUE"),
            "{args:?}: {ran}"
        );
        assert!(!ran.stderr.contains("secret-word"), "{ran}");
    }
    assert!(!dir.path().join("quoted.db").exists(), "nothing started");
    // A `$` outside single quotes would be replaced by another setting's value: refused, not
    // changed without a word (a password's `$word` became empty).
    std::fs::write(
        dir.path().join(".env"),
        "REMIT_ADDR=127.0.0.1:0\nREMIT_DARAJA_INITIATOR_PASSWORD=pa$word\nB=\"a b\"\n",
    )
    .unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.arg("check");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains(".env: line 2 has a $ in its value") && !ran.stderr.contains("word"),
        "{ran}"
    );
    let mut help = remit(dir.path(), None);
    help.arg("--help");
    let ran = crate::support::process::run(help);
    assert_eq!(ran.code, Some(0), "--help still answers: {ran}");
    // Mended, the same file configures: the comment is not part of the value.
    std::fs::write(
        dir.path().join(".env"),
        format!("# kiosk\nexport REMIT_DB='./quoted.db' # the ledger\nREMIT_ADDR=\"127.0.0.1:0\"\nENCRYPTION_KEY={TEST_KEY}\n"),
    )
    .unwrap();
    let line = listening_line(dir.path(), &[], &[]);
    assert!(
        line.starts_with("remit listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(dir.path().join("quoted.db").exists(), "REMIT_DB from .env");
}

#[test]
fn every_setting_the_configuration_reads_is_named_in_help_and_in_the_readme() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/env.rs")).unwrap();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = remit(dir.path(), None);
    cmd.arg("--help");
    let help = crate::support::process::run(cmd).stdout;
    let mut names: Vec<&str> = source
        .split('"')
        .filter(|s| {
            s.starts_with("REMIT_") && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 20, "{names:?}");
    for name in names {
        assert!(help.contains(name), "--help does not name {name}");
        assert!(readme.contains(name), "the README does not name {name}");
    }
}

/// Each command's `--help` lists the settings that command reads, and no other: every command
/// reads the ledger's (`config::env::ledger`), `replicate` and `check` replication's too, and
/// only `serve` and `daraja ping` the server's (before, `replicate --help` listed every server
/// setting and `check --help` none).
#[test]
fn each_commands_help_lists_the_settings_it_reads() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/env.rs")).unwrap();
    let section = |from: &str, to: &str| -> Vec<String> {
        let start = source.find(from).unwrap();
        let end = source[start..].find(to).map_or(source.len(), |n| start + n);
        let mut names: Vec<String> = source[start..end]
            .split('"')
            .filter(|s| {
                (s.starts_with("REMIT_") || *s == "ENCRYPTION_KEY")
                    && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
            })
            .map(String::from)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let ledger = section("fn ledger(", "fn replication(");
    let replication = section("fn replication(", "fn server(");
    let server = section("fn server(", "\u{0}");
    assert!(ledger.len() >= 3 && replication.len() == 2 && server.len() > 20);
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let mut cmd = remit(dir.path(), None);
        cmd.args(args).arg("--help");
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(0), "{args:?}: {ran}");
        ran.stdout
    };
    let commands: [(&[&str], bool, bool); 14] = [
        (&["serve"], true, true),
        (&["daraja"], true, true),
        (&["daraja", "ping"], true, true),
        (&["fx", "get"], false, false),
        (&["replicate"], true, false),
        (&["check"], true, false),
        (&["backup"], false, false),
        (&["restore"], false, false),
        (&["rotate-key"], false, false),
        (&["user", "add"], false, false),
        (&["user", "list"], false, false),
        (&["token", "issue"], false, false),
        (&["token", "revoke"], false, false),
        (&["fx", "set"], false, false),
    ];
    for (args, replicates, serves) in commands {
        let text = help(args);
        for name in &ledger {
            assert!(
                text.contains(name.as_str()),
                "{args:?} --help: {name}\n{text}"
            );
        }
        for name in &replication {
            assert_eq!(
                text.contains(name.as_str()),
                replicates,
                "{args:?} --help: {name}\n{text}"
            );
        }
        for name in server.iter().filter(|n| !replication.contains(n)) {
            assert_eq!(
                text.contains(name.as_str()),
                serves,
                "{args:?} --help: {name}\n{text}"
            );
        }
    }
}

/// A setting whose value is not text (bytes that are not UTF-8) is refused by name: it was read
/// as unset, so a mangled `ENCRYPTION_KEY` made a new key file and a mangled
/// `REMIT_METRICS_PUBLIC` left `/metrics` open, each without a word.
#[test]
fn a_setting_that_is_not_text_is_refused_not_read_as_unset() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let mangled = std::ffi::OsStr::from_bytes(b"\xff1");
    let with = |args: &[&str], name: &str| {
        let mut cmd = remit(dir.path(), None);
        cmd.args(args).env(name, mangled);
        crate::support::process::run(cmd)
    };
    for name in [
        "ENCRYPTION_KEY",
        "REMIT_METRICS_PUBLIC",
        "REMIT_GATEWAY",
        "PORT",
    ] {
        let serve = ["serve", "--db", "./n.db", "--addr", "127.0.0.1:0"];
        // (PORT is read only without an address given.)
        let ran = with(if name == "PORT" { &serve[..3] } else { &serve }, name);
        assert_eq!(ran.code, Some(2), "{name}: {ran}");
        assert!(
            ran.stderr.contains(name) && ran.stderr.contains("not text"),
            "{name}: {ran}"
        );
        assert!(
            !dir.path().join("n.db").exists(),
            "{name}: a ledger was made"
        );
        assert!(
            !dir.path().join("n.db.key").exists(),
            "{name}: a key was made"
        );
    }
    // `REMIT_DB` is a path, which may be any bytes: the command line reads it as one.
    let ran = with(&["check", "--db", "./n.db"], "REMIT_DB");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("no database at ./n.db") && !ran.stderr.contains("not text"),
        "{ran}"
    );
    // Every command reads the ledger's settings: `check` too.
    let ran = with(&["check", "--db", "./n.db"], "ENCRYPTION_KEY");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("ENCRYPTION_KEY") && ran.stderr.contains("not text"),
        "{ran}"
    );
}

/// A yes-or-no setting takes the usual words in any case and refuses the rest: before, only
/// `0`, `false` and `no` closed `/metrics`, so `off` silently left it open.
#[test]
fn a_yes_or_no_setting_refuses_a_word_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
        .env("REMIT_METRICS_PUBLIC", "nope");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("REMIT_METRICS_PUBLIC") && ran.stderr.contains("true or false"),
        "{ran}"
    );
    assert!(!dir.path().join("m.db").exists(), "nothing made");
    // Set but empty is not "unset": a template that left it blank gets a sentence, not open
    // metrics (it started, with /metrics public).
    for blank in ["", "  "] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
            .env("REMIT_METRICS_PUBLIC", blank);
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{blank:?}: {ran}");
        assert!(
            ran.stderr.contains("REMIT_METRICS_PUBLIC") && ran.stderr.contains("set but empty"),
            "{ran}"
        );
    }
    assert!(!dir.path().join("m.db").exists(), "nothing made");
    for word in ["OFF", " off ", "No", "on"] {
        let line = listening_line(
            dir.path(),
            &["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"],
            &[("ENCRYPTION_KEY", TEST_KEY), ("REMIT_METRICS_PUBLIC", word)],
        );
        assert!(line.starts_with("remit listening on"), "{word:?}: {line}");
    }
}

/// A choice that is none of its words is said back, and a comment after it named as the cause
/// (an environment file keeps it as part of the value: the service template's own lines, once
/// uncommented, stopped the start with "must be simulator, daraja or none" and nothing more).
#[test]
fn a_choice_setting_says_back_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
        .env("REMIT_GATEWAY", "simulator   # a demo kiosk");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains(r#"not "simulator   # a demo kiosk""#)
            && ran.stderr.contains("put comments on lines of their own"),
        "{ran}"
    );
    assert!(!dir.path().join("m.db").exists(), "nothing made");
    // A number, and the key (never said back), the same way.
    let mut cmd = remit(dir.path(), None);
    cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
        .env("ENCRYPTION_KEY", format!("{TEST_KEY} # the kiosk's key"))
        .env("REMIT_WORKERS", "8 # two cores");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("ENCRYPTION_KEY")
            && ran.stderr.contains("put comments on lines of their own")
            && !ran.stderr.contains(TEST_KEY),
        "{ran}"
    );
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
        .env("REMIT_REQUEST_TTL_H", "24 # a day");
    let ran = crate::support::process::run(cmd);
    assert!(
        ran.stderr.contains("REMIT_REQUEST_TTL_H")
            && ran.stderr.contains("put comments on lines of their own"),
        "{ran}"
    );
    assert!(!dir.path().join("m.db").exists(), "nothing made");
}

/// Going live with M-Pesa, every setting still missing is named in one start (it took one
/// restart each: seven).
#[test]
fn the_daraja_gateway_names_every_missing_setting_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--db", "./m.db", "--addr", "127.0.0.1:0"])
        .env("REMIT_GATEWAY", "daraja")
        .env(
            "REMIT_MPESA_CALLBACK_TOKEN",
            "0123456789abcdef0123456789abcdef",
        )
        .env("REMIT_DARAJA_SHORTCODE", "600000");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    for name in [
        "REMIT_DARAJA_CONSUMER_KEY",
        "REMIT_DARAJA_CONSUMER_SECRET",
        "REMIT_DARAJA_INITIATOR,",
        "REMIT_DARAJA_INITIATOR_PASSWORD",
        "REMIT_DARAJA_CERT",
        "REMIT_PUBLIC_URL",
    ] {
        assert!(ran.stderr.contains(name), "{name}: {ran}");
    }
    assert!(!ran.stderr.contains("REMIT_DARAJA_SHORTCODE"), "{ran}");
    assert!(!dir.path().join("m.db").exists(), "nothing made");
}

/// `REMIT_DB` set but blank is told as such (clap said `--db` lacked a value), unless `--db`
/// says where the file is.
#[test]
fn a_blank_database_setting_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for blank in ["", "  "] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["check"]).env("REMIT_DB", blank);
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{blank:?}: {ran}");
        assert!(
            ran.stderr.contains("REMIT_DB is set but empty"),
            "{blank:?}: {ran}"
        );
    }
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--addr", "127.0.0.1:0"])
        .env("REMIT_DB", "./l.db   # the ledger");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("put comments on lines of their own"),
        "{ran}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing made"
    );
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["check", "--db", "./none.db"]).env("REMIT_DB", "");
    let ran = crate::support::process::run(cmd);
    assert!(!ran.stderr.contains("REMIT_DB"), "{ran}");
    assert!(ran.stderr.contains("none.db"), "{ran}");
}

/// A key or a choice set but blank chooses nothing: the start stops naming it, and no database
/// or key file is made (a blank `ENCRYPTION_KEY=` made a key file beside a new database).
#[test]
fn a_blank_key_or_choice_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    for (name, key) in [
        ("ENCRYPTION_KEY", None),
        ("REMIT_SYNCHRONOUS", Some(TEST_KEY)),
    ] {
        let mut cmd = remit(dir.path(), key);
        cmd.args(["serve", "--db", "./b.db", "--addr", "127.0.0.1:0"])
            .env(name, " ");
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{name}: {ran}");
        assert!(
            ran.stderr.contains(name) && ran.stderr.contains("set but empty"),
            "{name}: {ran}"
        );
        assert!(!dir.path().join("b.db").exists(), "{name}: {ran}");
        assert!(!dir.path().join("b.db.key").exists(), "{name}: {ran}");
    }
}

/// A limit that would refuse everything, or one out of range, stops the start with a sentence
/// naming it: before, `REMIT_MAX_ESCROW_USD=0` started a server that refused every escrow,
/// `REMIT_PAYOUT_TIMEOUT_S=0` and `--workers 0` were quietly read as 1, and `--workers 100000`
/// as 256.
#[test]
fn a_limit_out_of_its_range_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], (&str, &str), &str); 12] = [
        (&[], ("REMIT_MAX_ESCROW_USD", "0"), "greater than 0"),
        (&[], ("REMIT_MAX_ESCROW_USD", "0.00"), "greater than 0"),
        (
            &[],
            ("REMIT_MAX_REQUEST_KES", "1000000000.01"),
            "at most 1000000000",
        ),
        (&[], ("REMIT_MAX_REQUEST_KES", "-5"), "greater than zero"),
        (
            &[],
            ("REMIT_PAYOUT_TIMEOUT_S", "0"),
            "from 1 to 604800 seconds",
        ),
        (
            &["--workers", "0"],
            ("REMIT_SIM_DELAY_MS", "0"),
            "--workers",
        ),
        (&[], ("REMIT_WORKERS", "100000"), "from 1 to 256"),
        // Every time setting has a top: a time added to the clock overflowed, and a Transaction
        // Status query due in the past was asked again at once, 200 times a second.
        (
            &[],
            ("REMIT_PAYOUT_STATUS_AFTER_S", "9223372036854775807"),
            "from 1 to 86400 seconds",
        ),
        (
            &[],
            ("REMIT_PAYOUT_TIMEOUT_S", "9223372036854775807"),
            "from 1 to 604800 seconds",
        ),
        (
            &[],
            ("REMIT_FLOAT_CHECK_S", "86401"),
            "from 60 to 86400 seconds",
        ),
        (
            &[],
            ("REMIT_SIM_DELAY_MS", "18446744073709551615"),
            "from 0 to 3600000 milliseconds",
        ),
        // A word where a number goes names the range too (it said "a whole number").
        (
            &[],
            ("REMIT_NOTIFICATIONS_KEEP_DAYS", "x"),
            "from 1 to 3650 days",
        ),
    ];
    for (args, (name, value), says) in cases {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db", "./l.db", "--addr", "127.0.0.1:0"])
            .args(args)
            .env(name, value);
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{name}={value} {args:?}: {ran}");
        assert!(ran.stderr.contains(says), "{name}={value} {args:?}: {ran}");
        if !args.is_empty() {
            continue;
        }
        assert!(ran.stderr.contains(name), "{name}={value}: {ran}");
    }
    assert!(!dir.path().join("l.db").exists(), "nothing made");
    // The ends of each range are taken.
    for (name, value) in [
        ("REMIT_MAX_ESCROW_USD", "0.01"),
        ("REMIT_MAX_REQUEST_KES", "1000000000"),
        ("REMIT_PAYOUT_TIMEOUT_S", "1"),
        ("REMIT_PAYOUT_TIMEOUT_S", "604800"),
        ("REMIT_PAYOUT_STATUS_AFTER_S", "86400"),
        ("REMIT_SIM_DELAY_MS", "3600000"),
        ("REMIT_WORKERS", "256"),
    ] {
        let line = listening_line(
            dir.path(),
            &["serve", "--db", "./l.db", "--addr", "127.0.0.1:0"],
            &[("ENCRYPTION_KEY", TEST_KEY), (name, value)],
        );
        assert!(
            line.starts_with("remit listening on"),
            "{name}={value}: {line}"
        );
    }
}

/// The server calls itself (the simulator's results) at the address it prints: an IPv6 one
/// in brackets, or its results never arrive.
#[test]
fn an_ipv6_listener_is_named_in_brackets() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: nothing to check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let line = listening_line(
        dir.path(),
        &["serve", "--db", "./v6.db", "--addr", "[::1]:0"],
        &[("ENCRYPTION_KEY", TEST_KEY)],
    );
    assert!(
        line.starts_with("remit listening on http://[::1]:"),
        "{line}"
    );
}

/// A Stripe secret that is not an endpoint's signing secret (an API key pasted by mistake) is
/// said at start, without the value; a `whsec_…` one is not.
#[test]
fn a_stripe_secret_that_is_not_whsec_is_warned_about_without_its_value() {
    use crate::support::process::Server;
    for (secret, warned) in [
        ("sk_test_51HqLyjWDarjtT1zdp7dc", true),
        ("whsec_9c2e5b1d4f603f7a", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("remit.db");
        let mut server = Server::start(
            &db,
            TEST_KEY,
            &dir.path().join("serve.log"),
            &[("REMIT_STRIPE_WEBHOOK_SECRET", secret)],
        );
        let log = start_lines(&server);
        assert_eq!(
            log.contains("REMIT_STRIPE_WEBHOOK_SECRET does not start with whsec_"),
            warned,
            "{log}"
        );
        assert!(!log.contains(secret), "{log}");
        assert!(server.terminate().success());
    }
}

/// A flag wins over a malformed variable it overrides, and a command checks only the settings
/// it reads: before, `PORT=abc remit serve --addr …` and `REMIT_WORKERS=0 remit serve
/// --workers 4` refused to start, and a bad server setting (a blank `REMIT_WORKERS=` in `.env`)
/// made `remit check` answer "could not run" on a healthy ledger.
#[test]
fn a_flag_wins_over_a_bad_variable_and_other_commands_ignore_the_servers_settings() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ["serve", "--db", "./l.db", "--addr", "127.0.0.1:0"];
    let line = listening_line(
        dir.path(),
        &[&serve[..], &["--workers", "4"]].concat(),
        &[
            ("ENCRYPTION_KEY", TEST_KEY),
            ("PORT", "abc"),
            ("REMIT_ADDR", "not an address"),
            ("REMIT_WORKERS", "0"),
        ],
    );
    assert!(line.starts_with("remit listening on"), "{line}");
    // Without the flag, the variable is read and its name given.
    for (name, value, says) in [
        ("PORT", "abc", "cannot be read (\"abc\")"),
        // What it takes, not only that it could not be read.
        (
            "PORT",
            "70000",
            "cannot be read (\"70000\"): too large a number; it takes a whole number from 1 to 65535",
        ),
        // As `--port 0` is refused: a port the system picks is no place a client can find.
        ("PORT", "0", "is 0: it takes a whole number from 1 to 65535"),
        ("REMIT_WORKERS", "0", "from 1 to 256"),
        ("REMIT_WORKERS", "many", "cannot be read (\"many\")"),
        // A setting with a range says it when the value is no number too (it said "0 or more").
        (
            "REMIT_MAX_CONNECTIONS",
            "abc",
            "cannot be read (\"abc\"): it takes a whole number from 16 to 16384",
        ),
        // And one with a floor (a word was told "0 or more", and 0 then refused).
        (
            "REMIT_FLOAT_CHECK_S",
            "abc",
            "cannot be read (\"abc\"): it takes a whole number from 60 to 86400 seconds",
        ),
        ("REMIT_UI_IDLE_S", "-1", "it takes a whole number from 0 to 86400 seconds (0: never)"),
        ("REMIT_SMS_LANGUAGE", "fr", "must be en or sw, not \"fr\""),
        ("REMIT_FLOAT_ALERT_KES", "-1", "must be 0 (no alert) or more shillings"),
        ("REMIT_PAYOUT_TIMEOUT_S", "0", "must be a whole number from 1 to 604800 seconds"),
        // Digits too many for the number: said so, not that it is no whole number.
        (
            "REMIT_REQUEST_TTL_H",
            "99999999999999999999",
            "too large a number; it takes a whole number",
        ),
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db", "./l.db"]).env(name, value);
        if name != "PORT" {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(2), "{name}={value}: {ran}");
        assert!(
            ran.stderr.contains(name) && ran.stderr.contains(says),
            "{name}={value}: {ran}"
        );
    }
    let server_only = [
        ("PORT", "abc"),
        ("REMIT_WORKERS", ""),
        ("REMIT_GATEWAY", "bogus"),
        ("REMIT_METRICS_PUBLIC", "nope"),
        ("REMIT_MAX_CONNECTIONS", "1"),
    ];
    for args in [
        &["check", "--db", "./l.db"][..],
        &["user", "list", "--db", "./l.db"],
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(args).envs(server_only);
        let ran = crate::support::process::run(cmd);
        assert_eq!(ran.code, Some(0), "{args:?}: {ran}");
    }
    // A setting the command reads is still checked.
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["check", "--db", "./l.db"])
        .env("REMIT_SYNCHRONOUS", "sometimes");
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(ran.stderr.contains("REMIT_SYNCHRONOUS"), "{ran}");
}

/// Guards against: a request answered under an idempotency key, retried after an operator
/// lowered a limit (`REMIT_MAX_ESCROW_USD`) and restarted, was refused `400` ("must not be more
/// than USD 100.00") though its escrow stood: a kiosk's retry read as a refusal. The key's
/// answer is replayed; the same request under a new key meets the new limit.
#[test]
fn a_request_answered_under_a_key_is_replayed_after_a_limit_was_lowered() {
    use crate::support::process::{user_add, Server};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let sender = user_add(&db, TEST_KEY, "sender", "Amina", None);
    let body = serde_json::json!({"recipientPhone": "0712345678", "recipientName": "Wanjiru",
        "totalAmountUsd": 150, "categories": ["rent"]});
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let first = server.post_with_key("/escrows", &sender, &body, "escrow-150");
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(server.terminate().success());
    let server = Server::start(
        &db,
        TEST_KEY,
        &dir.path().join("serve-2.log"),
        &[("REMIT_MAX_ESCROW_USD", "100")],
    );
    let again = server.post_with_key("/escrows", &sender, &body, "escrow-150");
    assert_eq!((again.status, &again.text), (201, &first.text), "replayed");
    let fresh = server.post_with_key("/escrows", &sender, &body, "escrow-150-again");
    assert_eq!(fresh.status, 400, "{}", fresh.text);
    assert_eq!(fresh.body["field"], "totalAmountUsd", "{}", fresh.text);
    let escrows = server.get("/escrows", &sender);
    assert_eq!(
        escrows.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        escrows.text
    );
}

/// A setting's value is read without the white space around it: a Stripe secret with the
/// carriage return of an environment file saved on Windows verified no event (`401`), and said
/// nothing at start. The database's path with such a character is refused, not a new, empty
/// ledger beside the real one (`a.db\r`, whose log line read `database ./a.db`).
#[test]
fn white_space_around_a_setting_is_not_part_of_it_and_around_the_database_is_refused() {
    use crate::support::process::{call_with, run, Server};
    let dir = tempfile::tempdir().unwrap();
    for db in ["./a.db\r", "./a.db ", " ./a.db"] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--addr", "127.0.0.1:0"])
            .env("REMIT_DB", db);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{db:?}: {ran}");
        assert!(
            ran.stderr.contains("REMIT_DB") && ran.stderr.contains("white space around it"),
            "{db:?}: {ran}"
        );
    }
    for flag in [
        ["--db", "./a.db\r"],
        ["--db=./a.db\r", "--addr=127.0.0.1:0"],
    ] {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.arg("serve").args(flag);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(2), "{flag:?}: {ran}");
        assert!(ran.stderr.contains("control character"), "{flag:?}: {ran}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing made"
    );

    let secret = "whsec_9c2e5b1d4f603f7a";
    let db = dir.path().join("remit.db");
    let mut server = Server::start(
        &db,
        TEST_KEY,
        &dir.path().join("serve.log"),
        &[("REMIT_STRIPE_WEBHOOK_SECRET", &format!("{secret}\r"))],
    );
    // An event of a kind remit does not act on: taken (200) once its signature verifies.
    let event = serde_json::json!({"id": "evt_trim", "object": "event", "type": "customer.created",
        "livemode": false, "data": {"object": {"id": "cus_1", "object": "customer"}}});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signature = remit::wire::stripe::sign(secret, now, event.to_string().as_bytes());
    let answer = call_with(
        &server.http,
        &server.base,
        ("POST", "/webhooks/stripe"),
        None,
        Some(&event),
        &[("Stripe-Signature", &signature)],
    )
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(server.terminate().success());
}

/// A database named through a symbolic link has its key beside the file the link names, with
/// its log and lock files (the key went beside the link, and `--db` naming the file itself
/// found no key); a ledger made through a link before keeps its key beside the link.
#[test]
fn a_database_named_through_a_link_keeps_its_key_beside_the_file() {
    use crate::support::process::run;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real/x.db", dir.path().join("link.db")).unwrap();
    let line = listening_line(
        dir.path(),
        &["serve", "--db", "./link.db", "--addr", "127.0.0.1:0"],
        &[],
    );
    assert!(line.starts_with("remit listening on"), "{line}");
    assert!(dir.path().join("real/x.db.key").exists());
    assert!(!dir.path().join("link.db.key").exists());
    for db in ["./real/x.db", "./link.db"] {
        let mut cmd = remit(dir.path(), None);
        cmd.args(["check", "--db", db]);
        let ran = run(cmd);
        assert_eq!(ran.code, Some(0), "{db}: {ran}");
    }
    // A ledger whose key was put beside its link before: found there.
    std::fs::rename(
        dir.path().join("real/x.db.key"),
        dir.path().join("link.db.key"),
    )
    .unwrap();
    let mut cmd = remit(dir.path(), None);
    cmd.args(["check", "--db", "./link.db"]);
    let ran = run(cmd);
    assert_eq!(ran.code, Some(0), "{ran}");
}

/// `ENCRYPTION_KEY` wins over the key file; a key file of another key beside the ledger is
/// warned about (a command run without the setting reads the file, and is told the key is
/// wrong), never saying either key.
#[test]
fn a_key_file_that_differs_from_the_encryption_key_setting_is_warned_about() {
    use crate::support::process::Server;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("remit.db");
    let other = "ab".repeat(32);
    std::fs::write(dir.path().join("remit.db.key"), &other).unwrap();
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve.log"), &[]);
    let log = start_lines(&server);
    assert!(
        log.contains("holds another key than ENCRYPTION_KEY"),
        "{log}"
    );
    assert!(!log.contains(&other) && !log.contains(TEST_KEY), "{log}");
    assert!(server.terminate().success());
    // The same key in both: nothing said.
    std::fs::write(dir.path().join("remit.db.key"), TEST_KEY).unwrap();
    let mut server = Server::start(&db, TEST_KEY, &dir.path().join("serve2.log"), &[]);
    let log = start_lines(&server);
    assert!(!log.contains("holds another key"), "{log}");
    assert!(server.terminate().success());
    // A wrong ENCRYPTION_KEY beside the right key file (after a rotation, the file may be the
    // only copy of the ledger's key): refused as a wrong key, and the file is not called the
    // one to remove.
    let mut cmd = remit(dir.path(), Some(&other));
    cmd.args(["serve", "--db", "./remit.db", "--addr", "127.0.0.1:0"]);
    let ran = crate::support::process::run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(!ran.stderr.contains("holds another key"), "{ran}");
}

/// A URL setting that cannot be read is said back, unless it may hold a password; Africa's
/// Talking's two required settings are named at once.
#[test]
fn a_url_that_cannot_be_read_is_not_said_back_when_it_may_hold_a_password() {
    use crate::support::process::run;
    let dir = tempfile::tempdir().unwrap();
    let serve = |name: &str, value: &str| {
        let mut cmd = remit(dir.path(), Some(TEST_KEY));
        cmd.args(["serve", "--db", "./u.db", "--addr", "127.0.0.1:0"])
            .env(name, value);
        run(cmd)
    };
    let ran = serve(
        "REMIT_PUBLIC_URL",
        "https://kiosk:hunter 2@kiosk.example.org",
    );
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("REMIT_PUBLIC_URL") && ran.stderr.contains("is not a URL"),
        "{ran}"
    );
    assert!(!ran.stderr.contains("hunter"), "{ran}");
    let ran = serve("REMIT_PUBLIC_URL", "https://kiosk example.org");
    assert!(
        ran.stderr
            .contains("\"https://kiosk example.org\" is not a URL"),
        "{ran}"
    );
    let ran = serve("REMIT_SMS_GATEWAY", "africastalking");
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr.contains("REMIT_AT_USERNAME, REMIT_AT_API_KEY"),
        "{ran}"
    );
    let mut cmd = remit(dir.path(), Some(TEST_KEY));
    cmd.args(["serve", "--db", "./u.db", "--addr", "127.0.0.1:0"])
        .env("REMIT_SMS_GATEWAY", "africastalking")
        .env("REMIT_AT_USERNAME", "sandbox");
    let ran = run(cmd);
    assert_eq!(ran.code, Some(2), "{ran}");
    assert!(
        ran.stderr
            .contains("africastalking needs REMIT_AT_API_KEY as well"),
        "{ran}"
    );
    assert!(!dir.path().join("u.db").exists(), "nothing made");
}
