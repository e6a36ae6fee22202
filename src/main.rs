//! The `group-licensing` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use group_licensing::rules::{self, Diagnostic, RulesError};

#[derive(Parser)]
#[command(name = "group-licensing", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL API (and GraphiQL) with background processing.
    Serve {
        /// The SQLite database file (created if missing).
        #[arg(long, default_value = "group-licensing.db", env = "GROUP_LICENSING_DB")]
        db: PathBuf,
        /// The rules folder.
        #[arg(long, default_value = "rules", env = "GROUP_LICENSING_RULES")]
        rules: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "GROUP_LICENSING_LISTEN")]
        listen: std::net::SocketAddr,
        /// Fill an empty database with a demo tenant that shows every kind of license error.
        #[arg(long)]
        demo: bool,
        /// Tokens that may query and change data, one per line (`#` comments allowed). More
        /// tokens: GROUP_LICENSING_ADMIN_TOKENS (comma- or space-separated).
        #[arg(long, value_name = "PATH", env = "GROUP_LICENSING_ADMIN_TOKEN_FILE")]
        admin_token_file: Option<PathBuf>,
        /// Tokens that may only query, one per line. More tokens: GROUP_LICENSING_READER_TOKENS.
        #[arg(long, value_name = "PATH", env = "GROUP_LICENSING_READER_TOKEN_FILE")]
        reader_token_file: Option<PathBuf>,
        /// Tokens that may only provision users, groups and memberships over SCIM
        /// (`/scim/v2`), one per line; they cannot use GraphQL.
        #[arg(
            long,
            value_name = "PATH",
            env = "GROUP_LICENSING_PROVISIONING_TOKEN_FILE"
        )]
        provisioning_token_file: Option<PathBuf>,
        /// Users deleted over SCIM in an hour at most; further deletions are refused (429), as
        /// Entra ID's provisioning guards against accidental deletions.
        #[arg(
            long,
            value_name = "N",
            default_value_t = 500,
            env = "GROUP_LICENSING_SCIM_MAX_DELETIONS_PER_HOUR"
        )]
        scim_max_deletions_per_hour: u32,
        /// Days of history (audit events) to keep; older events are removed, oldest first, at
        /// start and every ten minutes. Omitted: the history is kept forever.
        #[arg(
            long,
            value_name = "DAYS",
            value_parser = clap::value_parser!(u32).range(1..=36_500),
            env = "GROUP_LICENSING_AUDIT_RETENTION_DAYS"
        )]
        audit_retention_days: Option<u32>,
        /// Serve without tokens on an address other than loopback (anyone reaching it may
        /// change the data).
        #[arg(long)]
        insecure: bool,
        /// Let webhooks go to http URLs and to loopback, link-local and private addresses
        /// (receivers on the same machine or network); without it only https to public hosts.
        #[arg(long, env = "GROUP_LICENSING_WEBHOOK_ALLOW_PRIVATE")]
        webhook_allow_private: bool,
        /// Milliseconds a query may run before it is stopped with TIMEOUT (mutations are not
        /// cut: their transaction may already be committed).
        #[arg(
            long,
            value_name = "MS",
            default_value_t = 10_000,
            value_parser = clap::value_parser!(u64).range(1..=3_600_000),
            env = "GROUP_LICENSING_REQUEST_TIMEOUT_MS"
        )]
        request_timeout_ms: u64,
        /// MiB of query answers kept until the data or the rules change (0: no cache).
        #[arg(
            long,
            value_name = "MIB",
            default_value_t = 64,
            value_parser = clap::value_parser!(u64).range(0..=4096),
            env = "GROUP_LICENSING_RESPONSE_CACHE_MIB"
        )]
        response_cache_mib: u64,
        /// An origin whose pages may call the API from a browser (CORS), e.g.
        /// https://dashboard.example.com; repeat it for more. The server's own pages need none.
        #[arg(
            long = "allowed-origin",
            value_name = "ORIGIN",
            env = "GROUP_LICENSING_ALLOWED_ORIGINS",
            value_delimiter = ','
        )]
        allowed_origins: Vec<group_licensing::server::guard::AllowedOrigin>,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Write a realistic tenant of N users straight into an empty database (for benchmarks).
    Generate {
        /// The SQLite database file (created if missing; must hold no users or groups).
        #[arg(long)]
        db: PathBuf,
        /// How many users.
        #[arg(long)]
        users: u64,
        /// The rules folder (its catalog must have the products the tenant uses).
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
    },
    /// Check a folder of *.rules files: print every diagnostic, exit 1 on any error.
    Check {
        /// The rules folder.
        #[arg(default_value = "rules")]
        dir: PathBuf,
    },
    /// Write a rules file from Microsoft's product and service-plan CSV.
    ImportCatalog {
        /// Microsoft's "product names and service plan identifiers" CSV.
        csv: PathBuf,
        /// Also write the exclusive sets of this JSON file (label → plans).
        #[arg(long, value_name = "JSON")]
        exclusive: Option<PathBuf>,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            db,
            rules,
            listen,
            demo,
            admin_token_file,
            reader_token_file,
            provisioning_token_file,
            scim_max_deletions_per_hour,
            audit_retention_days,
            insecure,
            webhook_allow_private,
            request_timeout_ms,
            response_cache_mib,
            allowed_origins,
        } => serve(group_licensing::server::Config {
            db,
            rules,
            listen,
            demo,
            // Tokens themselves are never command-line arguments: those show in `ps`.
            tokens: group_licensing::server::auth::TokenSources {
                admin_file: admin_token_file,
                reader_file: reader_token_file,
                provisioning_file: provisioning_token_file,
                admin_env: std::env::var("GROUP_LICENSING_ADMIN_TOKENS").ok(),
                reader_env: std::env::var("GROUP_LICENSING_READER_TOKENS").ok(),
            },
            insecure,
            request_timeout: std::time::Duration::from_millis(request_timeout_ms),
            response_cache_bytes: (response_cache_mib as usize).saturating_mul(1024 * 1024),
            allowed_origins,
            scim_max_deletions_per_hour,
            audit_retention_days,
            webhook_allow_private,
        }),
        Command::Generate { db, users, rules } => generate(&db, users, &rules),
        Command::Schema => {
            print!("{}", group_licensing::api::sdl());
            Ok(())
        }
        Command::Check { dir } => check(&dir),
        Command::ImportCatalog {
            csv,
            exclusive,
            output,
        } => import_catalog(&csv, exclusive.as_deref(), output.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn serve(config: group_licensing::server::Config) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal; a file, journald or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    match runtime.block_on(group_licensing::server::serve(config)) {
        Ok(()) => Ok(()),
        Err(group_licensing::server::ServerError::Rules {
            dir,
            errors,
            warnings,
        }) => {
            print_diagnostics(&errors);
            print_diagnostics(&warnings);
            Err(format!(
                "{} in {dir}: not starting (fix them and run `group-licensing check {dir}`)",
                plural(errors.len(), "error", "errors")
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn generate(db: &std::path::Path, users: u64, rules_dir: &std::path::Path) -> Result<(), String> {
    let started = std::time::Instant::now();
    let table = match rules::load_dir(rules_dir) {
        Ok(compiled) => compiled.table,
        Err(RulesError::Invalid(failure)) => {
            print_diagnostics(&failure.errors);
            return Err(format!(
                "the rules in {} do not compile",
                rules_dir.display()
            ));
        }
        Err(other) => return Err(other.to_string()),
    };
    let store = group_licensing::store::Store::open(db)
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    let generated = group_licensing::store::generate::generate(&store, &table, users)
        .map_err(|e| e.to_string())?;
    // The file alone then holds the tenant, ready to be copied.
    store.checkpoint_blocking().map_err(|e| e.to_string())?;
    println!(
        "{}: {} users, {} groups ({}) in {:.1} s",
        db.display(),
        generated.users,
        generated.groups.len(),
        generated
            .groups
            .iter()
            .map(|(id, name, size)| format!("{id} \"{name}\" {size}"))
            .collect::<Vec<_>>()
            .join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}\n");
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn check(dir: &std::path::Path) -> Result<(), String> {
    match rules::load_dir(dir) {
        Ok(compiled) => {
            print_diagnostics(&compiled.warnings);
            let t = &compiled.table;
            println!(
                "{}: {}, {}, {}, {}, {}, {}",
                dir.display(),
                plural(t.plan_count(), "plan", "plans"),
                plural(t.product_count(), "product", "products"),
                plural(t.exclusive_sets().len(), "exclusive set", "exclusive sets"),
                plural(t.prerequisites().len(), "prerequisite", "prerequisites"),
                plural(t.location_rules().len(), "location rule", "location rules"),
                plural(compiled.warnings.len(), "warning", "warnings"),
            );
            Ok(())
        }
        Err(RulesError::Invalid(failure)) => {
            print_diagnostics(&failure.errors);
            print_diagnostics(&failure.warnings);
            Err(format!(
                "{} in {}, {}",
                plural(failure.errors.len(), "error", "errors"),
                dir.display(),
                plural(failure.warnings.len(), "warning", "warnings"),
            ))
        }
        Err(other) => Err(other.to_string()),
    }
}

fn import_catalog(
    csv: &std::path::Path,
    exclusive: Option<&std::path::Path>,
    output: Option<&std::path::Path>,
) -> Result<(), String> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let csv_bytes = read(csv)?;
    let json_bytes = exclusive.map(read).transpose()?;
    let report = rules::catalog::import_catalog(&csv_bytes, json_bytes.as_deref())
        .map_err(|e| format!("{}: {e}", csv.display()))?;
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    match output {
        Some(path) => std::fs::write(path, &report.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(report.text.as_bytes())
                .map_err(|e| format!("cannot write to standard output: {e}"))
        }
    }
}
