//! `usersync serve`: the SCIM endpoint over HTTP, on the embedded SQLite store or on a
//! PostgreSQL database that several nodes share.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use usersync_core::scim::service::{ScimError, ScimRequest, ScimResponse, Service, issue_token};
use usersync_core::store::{
    DirectoryKind, NewDirectory, Store, StoreError, purge_expired, system_clock,
};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The SQLite database (created when missing), or a PostgreSQL URL
    /// (`postgres://user@host/database`) for several nodes on one user base.
    #[arg(long, env = "USERSYNC_DB", default_value = "usersync.db")]
    db: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, requires = "tls_key", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Seconds a client may take to send a request's headers, and again its body; a
    /// connection idle for as long is closed. At stop, requests in flight get as long to
    /// finish.
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout: u64,
}

/// Bodies larger than this are refused before they are read whole; the service's own limit
/// (1 MiB) answers below it. Both are SCIM errors a client can read.
const BODY_LIMIT: usize = 2 << 20;

pub(crate) fn run(args: &Args) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal; a file or journald gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let store = match crate::open_store(&args.db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The store outlives the runtime: a PostgreSQL client must not be dropped inside it.
    let served = runtime.block_on(serve(store.clone(), args));
    drop(runtime);
    drop(store);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(store: Arc<dyn Store>, args: &Args) -> Result<(), String> {
    // Read the certificate before anything listens, so that a bad one is the first error.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| {
                    format!(
                        "cannot use the certificate {} with the key {}: {e}",
                        cert.display(),
                        key.display()
                    )
                })?,
        ),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    let names = tokio::task::block_in_place(|| {
        first_start(&*store, &format!("{scheme}://{addr}"))?;
        store
            .directories()
            .map(|all| all.into_iter().map(|d| d.name).collect::<Vec<_>>())
            .map_err(|e| e.to_string())
    })?;
    println!("serving {}: {}", names.len(), names.join(", "));
    tokio::spawn(purge_hourly(store.clone()));
    let timeout = std::time::Duration::from_secs(args.request_timeout);
    let state = AppState {
        service: Arc::new(Service::new(store)),
        inline: !crate::is_remote(&args.db),
        body_timeout: timeout,
    };
    let app = Router::new().fallback(handle).with_state(state);
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown().await;
        // New connections are refused; requests in flight get the timeout to finish.
        stopping.graceful_shutdown(Some(timeout));
    });
    // A connection that sends no request, or its headers too slowly, is closed after the
    // timeout (the first request's timer runs from the connection, the header timer while a
    // connection waits for each next request, so both bound idle ones): without them,
    // clients that connect and send nothing held the server's connections and file
    // descriptors for ever, before any token was checked. HTTPS only adds its acceptor.
    let mut server = axum_server::from_tcp(listener.into_std().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .first_request_timeout(timeout)
        .handle(handle);
    server.http_builder().http1().header_read_timeout(timeout);
    let app = app.into_make_service();
    match tls {
        None => server.serve(app).await,
        Some(config) => {
            let tls = axum_server::tls_rustls::RustlsAcceptor::new(config);
            server.acceptor(tls).serve(app).await
        }
    }
    .map_err(|e| e.to_string())?;
    // In-flight requests have finished; the store closes when the last `Arc` drops.
    tracing::info!("stopped");
    Ok(())
}

/// On a new database, creates the directory `default` and prints its endpoint and, on a
/// terminal, its token, so that a newcomer can `curl` at once. Output that is not a terminal
/// may be kept (journald, `docker logs`, a CI log): a token there would be leaked, so none is
/// issued and the line says how to issue one.
fn first_start(store: &dyn Store, origin: &str) -> Result<(), String> {
    if !store.directories().map_err(|e| e.to_string())?.is_empty() {
        return Ok(());
    }
    let directory = match store.create_directory(NewDirectory::new("default", DirectoryKind::Scim))
    {
        Ok(d) => d,
        // Another node started on the same new database at the same moment, and made it.
        Err(StoreError::Uniqueness { .. }) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    println!("created directory `default`");
    println!("endpoint: {origin}/scim/v2/default");
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let (token, _) = issue_token(store, &directory).map_err(|e| e.to_string())?;
        println!("token:    {token}");
        println!("(shown once; `usersync directory token rotate default` issues another)");
    } else {
        println!(
            "no token printed: this output is no terminal and may be kept in logs; issue one \
             with `usersync directory token rotate default` and the same --db"
        );
    }
    Ok(())
}

pub(crate) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// What every request is handled with.
#[derive(Clone)]
struct AppState {
    service: Arc<Service>,
    /// Whether quick requests may run on the runtime's own thread: true for the embedded
    /// SQLite store; a PostgreSQL client blocks on a runtime of its own, which must not run
    /// inside this one.
    inline: bool,
    /// How long a request's body may take to arrive.
    body_timeout: std::time::Duration,
}

async fn handle(State(state): State<AppState>, request: Request) -> Response<Body> {
    let service = &state.service;
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // A body is taken in only from a client with the directory's token.
    if matches!(parts.method.as_str(), "POST" | "PUT" | "PATCH") {
        let authorization = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let refused = tokio::task::block_in_place(|| {
            service.refuse_unauthorized(parts.uri.path(), authorization)
        });
        if let Some(refused) = refused {
            tracing::info!(method = %parts.method, path = %parts.uri.path(), status = refused.status, "request");
            return http_response(refused);
        }
    }
    let body = match tokio::time::timeout(state.body_timeout, to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(b)) => b.to_vec(),
        Ok(Err(_)) => {
            return scim_error(
                413,
                format!("the body is larger than {BODY_LIMIT} bytes, or was not sent whole"),
            );
        }
        Err(_) => {
            return scim_error(
                408,
                format!(
                    "the body did not arrive within {} s",
                    state.body_timeout.as_secs()
                ),
            );
        }
    };
    let scim = ScimRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body,
    };
    let method = scim.method.clone();
    let path = scim.path.clone();
    // The store is synchronous. Reading one user or a discovery document takes microseconds
    // and runs right here; anything that may take longer (a list, a group with all its
    // members, a filter that scans, a bulk request) tells the runtime this worker blocks, so
    // that its other tasks move elsewhere.
    let run = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.handle(&scim)));
    let quick = state.inline && method == "GET" && scim.query.is_empty() && {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match segments.as_slice() {
            ["", "scim", "v2", _, "Users", _] => true,
            ["", "scim", "v2", _, endpoint, ..] => {
                matches!(
                    *endpoint,
                    "ServiceProviderConfig" | "Schemas" | "ResourceTypes"
                )
            }
            _ => false,
        }
    };
    let handled = if quick {
        run()
    } else {
        tokio::task::block_in_place(run)
    };
    let Ok(response) = handled else {
        // The service is fuzzed never to panic; should it, this request fails alone.
        tracing::error!(%method, %path, status = 500, cause = "the service panicked", "request");
        return scim_error(500, "the request failed".into());
    };
    // Paths carry ids, never secrets; tokens travel in headers, which are not logged.
    let micros = started.elapsed().as_micros() as u64;
    match &response.cause {
        Some(cause) => {
            tracing::error!(%method, %path, status = response.status, micros, %cause, "request")
        }
        None => tracing::info!(%method, %path, status = response.status, micros, "request"),
    }
    http_response(response)
}

/// How often `serve` deletes the users inactive for longer than their directory's retention.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes the users past their directory's retention, at start and every [`PURGE_EVERY`]
/// (in every directory: SCIM ones, and LDAP ones synced into this store).
async fn purge_hourly(store: Arc<dyn Store>) {
    loop {
        let from = store.clone();
        let purged =
            tokio::task::spawn_blocking(move || purge_expired(&*from, system_clock()(), None))
                .await;
        match purged {
            Ok(Ok(purged)) => {
                for (directory, users) in purged {
                    tracing::info!(%directory, users, "purged users inactive for longer than the retention");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "purging users past the retention failed"),
            Err(e) => tracing::warn!(error = %e, "purging users past the retention failed"),
        }
        tokio::time::sleep(PURGE_EVERY).await;
    }
}

/// A SCIM error (RFC 7644 §3.12) for a request the service never saw.
fn scim_error(status: u16, detail: String) -> Response<Body> {
    let error = ScimError {
        status,
        scim_type: None,
        detail,
        cause: None,
    };
    http_response(error.to_response())
}

fn http_response(response: ScimResponse) -> Response<Body> {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(n, v);
        }
    }
    out
}
