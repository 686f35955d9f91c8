//! `usersync directory`: create and list directories, rotate and revoke their tokens, check
//! a sign-in against kept password hashes.

use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};
use usersync_core::scim::service::{create_directory, issue_token};
use usersync_core::store::{
    Directory, DirectoryKind, NewDirectory, Store, SyncRun, UserNameScope, directory_summaries,
    purge_expired, system_clock,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
    /// The SQLite database (created when missing), or a PostgreSQL URL.
    #[arg(
        long,
        global = true,
        env = "USERSYNC_DB",
        default_value = "usersync.db"
    )]
    db: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Creates a directory; a SCIM directory gets its first token, shown once. Its settings
    /// are chosen here, once.
    Create {
        /// Its name, used in the endpoint path.
        name: String,
        /// Where its users and groups come from: scim, ldap or local.
        #[arg(long, default_value = "scim")]
        kind: String,
        /// Days a deactivated user is kept before it is purged (0: deleted at once).
        #[arg(long, default_value_t = 30)]
        retention_days: u32,
        /// Whom a userName must be unique among: every `platform` directory, or this
        /// `directory` only.
        #[arg(long, default_value = "platform")]
        user_names: String,
        /// Keep the passwords identity providers send, as salted Argon2id hashes, for
        /// `verify-password` and the bindings' sign-in check (default: checked, then dropped).
        #[arg(long)]
        keep_password_hashes: bool,
        /// Hold SCIM clients to RFC 7644 to the letter, refusing what only identity
        /// providers send (Entra's string booleans, capitalised PATCH ops, …).
        #[arg(long)]
        strict: bool,
    },
    /// Lists the directories with their licensed (active) and inactive user counts.
    List,
    /// Manages a directory's tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Checks a user's password against the hash the directory keeps; the password is read
    /// from standard input (one line), never from the command line.
    ///
    /// Exits 0 and prints the user's id on a match, 1 otherwise.
    VerifyPassword {
        /// The directory (created with --keep-password-hashes).
        name: String,
        /// The user's userName (case is ignored).
        user_name: String,
    },
    /// Deletes the users inactive for longer than the directory's retention (all
    /// directories without a name), as `serve` does hourly and `sync` after each run.
    Purge {
        /// The directory; all when left out.
        name: Option<String>,
    },
    /// Shows the last sync runs of an LDAP directory: when, how they ended, what they did.
    Runs {
        /// The directory.
        name: String,
        /// How many runs, newest first.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Issues another token; the old ones stay valid until revoked.
    Rotate {
        /// The directory.
        name: String,
    },
    /// Revokes a token by its id (see `token list`).
    Revoke {
        /// The directory.
        name: String,
        /// The token's id.
        id: i64,
    },
    /// Lists a directory's tokens (ids and dates, never the secrets).
    List {
        /// The directory.
        name: String,
    },
}

pub(crate) fn run(args: &Args) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn find(store: &dyn Store, name: &str) -> Result<Directory, String> {
    store
        .directory(name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no directory `{name}`"))
}

fn execute(args: &Args) -> Result<(), String> {
    let store = crate::open_store(&args.db)?;
    let store = &*store;
    match &args.command {
        Command::Create {
            name,
            kind,
            retention_days,
            user_names,
            keep_password_hashes,
            strict,
        } => {
            let kind = DirectoryKind::parse(kind)
                .ok_or_else(|| format!("unknown kind `{kind}` (scim, ldap or local)"))?;
            let user_name_scope = UserNameScope::parse(user_names).ok_or_else(|| {
                format!("unknown --user-names `{user_names}` (platform or directory)")
            })?;
            let created = create_directory(
                store,
                NewDirectory {
                    retention_days: *retention_days,
                    user_name_scope,
                    keep_password_hashes: *keep_password_hashes,
                    strict: *strict,
                    ..NewDirectory::new(name.clone(), kind)
                },
            )
            .map_err(|e| e.to_string())?;
            if args.json {
                println!("{created}");
            } else {
                println!("created directory `{name}` ({})", kind.as_str());
                println!(
                    "endpoint: {}",
                    created["endpoint"].as_str().unwrap_or_default()
                );
                if let Some(t) = created["token"].as_str() {
                    println!("token:    {t}");
                    println!("(shown once)");
                }
            }
        }
        Command::Purge { name } => {
            let purged = purge_expired(store, system_clock()(), name.as_deref())
                .map_err(|e| e.to_string())?;
            if args.json {
                let counts: serde_json::Map<String, Value> =
                    purged.into_iter().map(|(d, n)| (d, json!(n))).collect();
                println!("{}", Value::Object(counts));
            } else if purged.is_empty() {
                println!("no user is past its directory's retention");
            } else {
                for (directory, users) in purged {
                    println!("purged {users} users of `{directory}`");
                }
            }
        }
        Command::List => {
            let rows = directory_summaries(store).map_err(|e| e.to_string())?;
            if args.json {
                println!("{}", json!(rows));
            } else {
                for r in rows {
                    println!(
                        "{}\t{}\t{}\tactive {}\tinactive {}",
                        r["name"].as_str().unwrap_or_default(),
                        r["kind"].as_str().unwrap_or_default(),
                        r["endpoint"].as_str().unwrap_or_default(),
                        r["activeUsers"],
                        r["inactiveUsers"]
                    );
                }
            }
        }
        Command::Token { command } => match command {
            TokenCommand::Rotate { name } => {
                let d = find(store, name)?;
                let (token, stored) = issue_token(store, &d).map_err(|e| e.to_string())?;
                if args.json {
                    println!("{}", json!({"id": stored.id, "token": token}));
                } else {
                    println!("token {}: {token}", stored.id);
                    println!("(shown once; revoke the old token when clients have switched)");
                }
            }
            TokenCommand::Revoke { name, id } => {
                let d = find(store, name)?;
                store.revoke_token(d.id, *id).map_err(|e| e.to_string())?;
                if !args.json {
                    println!("revoked token {id} of `{name}`");
                }
            }
            TokenCommand::List { name } => {
                let d = find(store, name)?;
                let tokens = store.tokens(d.id).map_err(|e| e.to_string())?;
                if args.json {
                    let list: Vec<_> = tokens
                        .iter()
                        .map(|t| json!({"id": t.id, "created": t.created.to_string()}))
                        .collect();
                    println!("{}", json!(list));
                } else {
                    for t in tokens {
                        println!("{}\tissued {}", t.id, t.created);
                    }
                }
            }
        },
        Command::VerifyPassword { name, user_name } => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("reading the password from standard input: {e}"))?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            let user = usersync_core::password::verify(store, name, user_name, password)
                .map_err(|e| e.to_string())?
                .ok_or("the user name and password do not match")?;
            if args.json {
                println!("{}", json!({"id": user.id, "userName": user.name}));
            } else {
                println!("{}", user.id);
            }
        }
        Command::Runs { name, limit } => {
            let d = find(store, name)?;
            let runs = store.runs(d.id, *limit).map_err(|e| e.to_string())?;
            if args.json {
                let list: Vec<_> = runs.iter().map(SyncRun::to_json).collect();
                println!("{}", json!(list));
            } else {
                for r in runs {
                    let detail = r.report["error"].as_str().map_or_else(
                        || {
                            let applied: u64 =
                                r.report["report"]["applied"].as_object().map_or(0, |m| {
                                    m.values().filter_map(serde_json::Value::as_u64).sum()
                                });
                            format!("{applied} changes applied")
                        },
                        str::to_owned,
                    );
                    println!("{}\t{}\t{}\t{detail}", r.id, r.started, r.outcome);
                }
            }
        }
    }
    Ok(())
}
