//! `usersync check-filter`: validate a filter or path the way the service will read it.

use std::io::Write;
use std::process::ExitCode;

use serde_json::json;
use usersync_core::ldap::filter::LdapFilter;
use usersync_core::scim::filter::{Compatibility, Filter, ParseOptions};
use usersync_core::scim::path::PatchPath;
use usersync_core::scim::schema::SchemaRegistry;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The expression to check.
    expression: String,
    /// Check an LDAP filter (RFC 4515) instead of a SCIM filter.
    #[arg(long, conflicts_with_all = ["path", "resource_type", "strict"])]
    ldap: bool,
    /// Check a SCIM PATCH path instead of a filter.
    #[arg(long)]
    path: bool,
    /// Also bind the filter to a resource type (`User`, `Group`), which catches operators and
    /// values that cannot apply to their attribute, such as `active gt true`.
    #[arg(long, value_name = "NAME", conflicts_with = "path")]
    resource_type: Option<String>,
    /// Follow RFC 7644 strictly: no Microsoft Entra ID forms.
    #[arg(long)]
    strict: bool,
    /// Print the result as JSON: {"valid", "canonical", "error": {"message", "position", "kind"}}.
    #[arg(long)]
    json: bool,
}

/// The outcome of a check, whatever the language.
struct Outcome {
    canonical: Result<String, Problem>,
}

struct Problem {
    message: String,
    position: Option<usize>,
    end: Option<usize>,
    kind: &'static str,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let outcome = match check(args) {
        Ok(outcome) => outcome,
        Err(usage) => {
            eprintln!("error: {usage}");
            return ExitCode::from(2);
        }
    };
    let valid = outcome.canonical.is_ok();
    if args.json {
        let body = match &outcome.canonical {
            Ok(c) => json!({"valid": true, "canonical": c, "error": null}),
            Err(p) => json!({
                "valid": false,
                "canonical": null,
                "error": {"message": p.message, "position": p.position, "kind": p.kind},
            }),
        };
        println!("{body}");
    } else {
        match &outcome.canonical {
            Ok(c) => println!("{c}"),
            Err(p) => {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "{}", render(&args.expression, p));
            }
        }
    }
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn check(args: &Args) -> Result<Outcome, String> {
    let compat = if args.strict {
        Compatibility::strict()
    } else {
        Compatibility::default()
    };
    let options = ParseOptions::default().with_compat(compat);
    let from_error = |e: usersync_core::Error| {
        let syntax = e.syntax();
        Problem {
            message: syntax.map_or_else(|| e.to_string(), |s| s.message().to_owned()),
            position: e.position(),
            end: syntax.map(|s| s.span().end),
            kind: e.kind().as_str(),
        }
    };
    if args.ldap {
        let canonical = LdapFilter::parse(&args.expression)
            .map(|f| f.to_string())
            .map_err(from_error);
        return Ok(Outcome { canonical });
    }
    if args.path {
        let canonical = PatchPath::parse_with(&args.expression, &options)
            .map(|p| p.to_string())
            .map_err(from_error);
        return Ok(Outcome { canonical });
    }
    let parsed = Filter::parse_with(&args.expression, &options);
    let canonical = match (&args.resource_type, parsed) {
        (_, Err(e)) => Err(from_error(e)),
        (None, Ok(f)) => Ok(f.to_string()),
        (Some(name), Ok(f)) => {
            let registry = SchemaRegistry::core();
            let rt = registry.resource_type(name).ok_or_else(|| {
                let known: Vec<&str> = registry
                    .resource_types()
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                format!("no resource type `{name}` (known: {})", known.join(", "))
            })?;
            f.compile_with(rt, options.compat)
                .map(|_| f.to_string())
                .map_err(from_error)
        }
    };
    Ok(Outcome { canonical })
}

/// The message, then the input with a caret line under the offending bytes.
fn render(input: &str, p: &Problem) -> String {
    let Some(position) = p.position else {
        return format!("error: {}\n", p.message);
    };
    let mut out = format!("error: {} at byte {position}\n", p.message);
    // One line of input: control characters become spaces so the caret stays aligned.
    let shown: String = input
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let column = input
        .get(..position)
        .map_or(input.chars().count(), |s| s.chars().count());
    let width = p
        .end
        .and_then(|end| input.get(position..end))
        .map_or(1, |s| s.chars().count().clamp(1, 60));
    out.push_str(&format!(
        "  {shown}\n  {}{}\n",
        " ".repeat(column),
        "^".repeat(width)
    ));
    out
}
