//! The OpenAPI document's fixed parts ([`ApiDoc`]: info, servers, tags, shared schemas) and
//! what [`complete`] declares for every operation once the routes have added theirs: the `bearer` security scheme, and
//! the responses any operation can give whatever its handler does — 401 (a `/v1` route or
//! `/metrics` without a valid key), 405 (another method on the path), 408 (the request
//! timeout, on every route but the event stream), 429 (the tenant's request rate, on `/v1`)
//! and 500 (an internal error). Paths and their own schemas come from the routes.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Response, ResponseBuilder};
use utoipa::{OpenApi, PartialSchema};

use super::error::{PROBLEM_JSON, Problem};
use super::routes::events::{JobEvent, JobEventName};

/// The document's fixed parts.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "gmfuse",
        description = "Model fusion by graph matching (GAMF) as a service: upload two models of \
                       one architecture, queue a fusion job, poll it, download the report, its \
                       plots and the fused weights. Every error is `application/problem+json` \
                       with a stable `code`.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers(
        (url = "/", description = "The gmfuse that serves this document"),
        (url = "http://127.0.0.1:8080", description = "gmfuse on its default local address"),
    ),
    tags(
        (name = "models", description = "Uploaded model weights (safetensors)"),
        (name = "architectures", description = "Network architectures: presets and custom specs"),
        (name = "datasets", description = "Evaluation sets"),
        (name = "jobs", description = "Fusion jobs: submit, poll, stream, cancel"),
        (name = "results", description = "Reports, plots and fused weights of succeeded jobs"),
        (name = "ops", description = "Health, readiness and metrics"),
    ),
    components(schemas(Problem, JobEvent, JobEventName))
)]
pub struct ApiDoc;

/// Complete the document of every route: the security scheme, and the responses every
/// operation shares (run once the routes have added their paths).
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    BearerAuth.modify(doc);
    CommonResponses.modify(doc);
}

/// A problem+json response described by `description`, with `Retry-After` when `retry`.
fn problem(description: &str, retry: bool) -> Response {
    let mut builder = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry {
        builder = builder.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u32::schema()))
                .description(Some("Seconds to wait"))
                .build(),
        );
    }
    builder.build()
}

/// Adds to every operation the responses it shares with all the others (see the module doc),
/// unless the operation describes that status itself.
struct CommonResponses;

impl CommonResponses {
    fn add(op: &mut Operation, status: &str, response: &Response) {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| response.clone().into());
    }
}

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let unauthorized = problem(
            "No valid API key (`unauthorized`; with `WWW-Authenticate: Bearer`): required once a \
             key exists, or with GMFUSE_REQUIRE_AUTH=1",
            false,
        );
        let not_allowed = problem(
            "Another method on this path (`method_not_allowed`; `Allow` lists the methods)",
            false,
        );
        let timeout = problem(
            "The request took longer than the server's request timeout (`request_timeout`)",
            false,
        );
        let rate_limited = problem(
            "The tenant is over its request rate (`rate_limited`); retry after `Retry-After` \
             seconds",
            true,
        );
        let internal = problem(
            "An internal error (`internal`); the detail is in the server's log",
            false,
        );
        for (path, item) in &mut openapi.paths.paths {
            let v1 = path.starts_with("/v1/");
            let keyed = v1 || path == "/metrics";
            let streamed = path.ends_with("/events");
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                if keyed {
                    Self::add(op, "401", &unauthorized);
                }
                Self::add(op, "405", &not_allowed);
                if !streamed {
                    Self::add(op, "408", &timeout);
                }
                if v1 {
                    Self::add(op, "429", &rate_limited);
                }
                Self::add(op, "500", &internal);
            }
        }
    }
}

/// Declares the `bearer` security scheme (`Authorization: Bearer gmf_…`) for every operation;
/// the empty alternative is the open mode of a service that has no key yet.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("gmf_<64 hex digits>")
            .description(Some(
                "An API key from `gmfuse keys create --tenant NAME`. Required on every `/v1` \
                 route once a key exists (or with GMFUSE_REQUIRE_AUTH=1); `/healthz` and \
                 `/readyz` stay open, `/metrics` wants GMFUSE_METRICS_KEY when it is set.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        openapi.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::default(),
        ]);
    }
}
