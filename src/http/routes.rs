//! The route table: every route of the API, with who may call it, whether it takes a body, and
//! its handler. Dispatch, the `Allow` header and authentication before a body is read are all
//! built from this one table.

use super::handlers::{admin, assets, escrows, notifications, requests, users, webhooks};
use super::reply::{error_reply, status_of, Reply};
use super::request::{Method, Req};
use crate::app::App;
use crate::error::{Error, Result};
use crate::service::idempotency::Lookup;
use crate::service::{require_role, Role};

/// Who may call a route.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A bearer token (the handler checks the role).
    Bearer,
    /// A provider's webhook that authenticates by its body's signature (Stripe).
    Webhook,
    /// A provider's webhook that authenticates by the secret token in its path (M-Pesa's
    /// results): checked before the body is read.
    PathToken,
}

/// A handler: parses the request, calls one service function, shapes the reply.
pub type Handler = fn(&App, &Req) -> Result<Reply>;

/// One route of the API.
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template; `:name` segments are parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What answers it.
    pub handler: Handler,
    /// The query parameters it reads; any other is refused (`400 unknown_field`), as an
    /// unknown body field is.
    pub query: &'static [&'static str],
    /// The roles that may ever call it, besides admins (who always may), when the route alone
    /// decides: a caller of any other role is `403` before its body is read. `None` when the
    /// handler decides by the object (a party of the escrow, the request's maker…), or for any
    /// role. The handler checks the role too.
    pub roles: Option<&'static [Role]>,
}

impl Route {
    /// Does it take a body? (`POST` and `PUT` do; a body sent to any other route is never
    /// read.)
    pub fn takes_body(&self) -> bool {
        matches!(self.method, Method::Post | Method::Put)
    }
}

const fn route(method: Method, path: &'static str, access: Access, handler: Handler) -> Route {
    Route {
        method,
        path,
        access,
        handler,
        query: &[],
        roles: None,
    }
}

impl Route {
    /// The same route, reading these query parameters.
    const fn with_query(mut self, query: &'static [&'static str]) -> Route {
        self.query = query;
        self
    }

    /// The same route, for these roles only (and admins): `&[]` is admins only.
    const fn only(mut self, roles: &'static [Role]) -> Route {
        self.roles = Some(roles);
        self
    }

    /// `403` for a caller whose role may never call this route (before its body is read).
    pub fn check_role(&self, req: &Req, app: &App) -> Result<()> {
        match self.roles {
            Some(roles) => require_role(&req.actor(app)?, roles),
            None => Ok(()),
        }
    }

    /// `400` for a query parameter the route does not read, or one given twice.
    fn check_query(&self, req: &Req) -> Result<()> {
        for (i, (name, _)) in req.query.iter().enumerate() {
            if !self.query.contains(&name.as_str()) {
                return Err(Error::UnknownQuery {
                    name: super::body::said_back(name).into_owned(),
                    allowed: self.query,
                });
            }
            if req.query[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(Error::invalid(name, "is given more than once"));
            }
        }
        Ok(())
    }
}

/// `limit` and `cursor`, read by every list.
const PAGE: [&str; 2] = ["limit", "cursor"];

use Access::{Bearer, PathToken, Public, Webhook};
use Role::{Agent, Recipient, Sender};
/// Admins only.
const ADMIN: &[Role] = &[];
use Method::{Delete, Get, Post, Put};

/// Every route.
pub const ROUTES: &[Route] = &[
    route(Get, "/health", Public, admin::health),
    route(Get, "/metrics", Public, admin::metrics),
    route(Get, "/openapi.json", Public, admin::openapi),
    route(Get, "/me", Bearer, users::me),
    route(Get, "/escrows", Bearer, escrows::list).with_query(&[
        PAGE[0],
        PAGE[1],
        "status",
        "recipientPhone",
        "ref",
    ]),
    route(Post, "/escrows", Bearer, escrows::create).only(&[Sender]),
    route(Get, "/escrows/:id", Bearer, escrows::get),
    route(Post, "/escrows/:id/deposits", Bearer, escrows::deposit).only(&[Agent]),
    route(Get, "/escrows/:id/journal", Bearer, escrows::journal).with_query(&PAGE),
    route(Post, "/escrows/:id/cancel", Bearer, escrows::cancel).only(&[Sender]),
    route(Post, "/escrows/:id/clear-flag", Bearer, escrows::clear_flag).only(ADMIN),
    route(
        Post,
        "/escrows/:id/recipient-token",
        Bearer,
        escrows::recipient_token,
    )
    .only(&[Sender]),
    route(Get, "/payment-requests", Bearer, requests::list)
        .with_query(&[PAGE[0], PAGE[1], "status", "escrowId"]),
    route(Post, "/payment-requests", Bearer, requests::create).only(&[Recipient, Agent]),
    route(Get, "/payment-requests/:id", Bearer, requests::get),
    route(
        Post,
        "/payment-requests/:id/approve",
        Bearer,
        requests::approve,
    )
    .only(&[Sender]),
    route(
        Post,
        "/payment-requests/:id/reject",
        Bearer,
        requests::reject,
    )
    .only(&[Sender]),
    route(
        Post,
        "/payment-requests/:id/cancel",
        Bearer,
        requests::cancel,
    ),
    route(Get, "/fx-rates", Bearer, admin::rates),
    route(Put, "/fx-rates/:pair", Bearer, admin::set_rate).only(ADMIN),
    route(Get, "/users", Bearer, users::list)
        .with_query(&PAGE)
        .only(ADMIN),
    route(Post, "/users", Bearer, users::create).only(ADMIN),
    route(Post, "/users/:id/tokens", Bearer, users::issue_token).only(ADMIN),
    route(Put, "/users/:id/language", Bearer, users::set_language).only(ADMIN),
    route(Delete, "/tokens/:prefix", Bearer, users::revoke_token).only(ADMIN),
    route(Get, "/audit", Bearer, admin::audit)
        .with_query(&["entity", PAGE[0], PAGE[1]])
        .only(&[Sender]),
    route(Get, "/admin/integrity", Bearer, admin::integrity).only(ADMIN),
    route(Get, "/admin/float", Bearer, admin::float).only(ADMIN),
    route(Get, "/admin/replication", Bearer, admin::replication).only(ADMIN),
    route(Get, "/payouts", Bearer, admin::payouts)
        .with_query(&[PAGE[0], PAGE[1], "status"])
        .only(ADMIN),
    route(Get, "/deposits", Bearer, admin::deposits)
        .with_query(&[PAGE[0], PAGE[1], "status", "escrowId"])
        .only(&[Agent]),
    route(Post, "/payouts/:id/resolve", Bearer, admin::resolve_payout).only(ADMIN),
    route(Post, "/webhook-endpoints", Bearer, notifications::create).only(ADMIN),
    route(Get, "/webhook-endpoints", Bearer, notifications::list)
        .with_query(&PAGE)
        .only(ADMIN),
    route(Get, "/webhook-endpoints/:id", Bearer, notifications::get).only(ADMIN),
    route(
        Delete,
        "/webhook-endpoints/:id",
        Bearer,
        notifications::delete,
    )
    .only(ADMIN),
    route(
        Post,
        "/webhook-endpoints/:id/enable",
        Bearer,
        notifications::enable,
    )
    .only(ADMIN),
    route(
        Post,
        "/webhook-endpoints/:id/disable",
        Bearer,
        notifications::disable,
    )
    .only(ADMIN),
    route(
        Get,
        "/webhook-endpoints/:id/deliveries",
        Bearer,
        notifications::deliveries,
    )
    .with_query(&[PAGE[0], PAGE[1], "status"])
    .only(ADMIN),
    route(
        Get,
        "/webhook-deliveries",
        Bearer,
        notifications::deliveries_by_endpoint,
    )
    .with_query(&["endpointId", PAGE[0], PAGE[1], "status"])
    .only(ADMIN),
    route(
        Get,
        "/webhook-deliveries/:id",
        Bearer,
        notifications::delivery,
    )
    .only(ADMIN),
    route(
        Post,
        "/webhook-deliveries/:id/retry",
        Bearer,
        notifications::retry,
    )
    .only(ADMIN),
    route(Get, "/sms", Bearer, notifications::sms)
        .with_query(&[PAGE[0], PAGE[1], "status", "userId"])
        .only(ADMIN),
    route(Post, "/webhooks/stripe", Webhook, webhooks::stripe),
    route(Post, "/webhooks/payouts/:token", PathToken, webhooks::mpesa).with_query(&["timeout"]),
    route(Post, "/webhooks/mpesa/:token", PathToken, webhooks::mpesa).with_query(&["timeout"]),
];

/// Does a path match a template? Returns the values of its `:params`. The path starts with
/// exactly one `/`, as the template does: `//users` or `users` is no route (a path is not
/// normalised into another).
pub(crate) fn matches<'a>(template: &str, path: &'a str) -> Option<Vec<&'a str>> {
    let mut segments = path.strip_prefix('/')?.split('/');
    let mut params = Vec::new();
    for part in template.trim_start_matches('/').split('/') {
        let segment = segments.next()?;
        if part.starts_with(':') {
            if segment.is_empty() {
                return None;
            }
            params.push(segment);
        } else if part != segment {
            return None;
        }
    }
    segments.next().is_none().then_some(params)
}

/// What the table says of a request.
pub enum Found<'a> {
    /// The route and the values of its parameters.
    Route(&'static Route, Vec<&'a str>),
    /// The path exists, the method does not: these methods do.
    WrongMethod(&'static str, Vec<Method>),
    /// No route has this path.
    NoRoute,
}

/// Looks a request up in the table.
pub fn find(method: Method, path: &str) -> Found<'_> {
    let mut allowed = Vec::new();
    let mut template = "";
    for route in ROUTES {
        if let Some(params) = matches(route.path, path) {
            if route.method == method {
                return Found::Route(route, params);
            }
            allowed.push(route.method);
            template = route.path;
        }
    }
    if allowed.is_empty() {
        Found::NoRoute
    } else {
        Found::WrongMethod(template, allowed)
    }
}

/// Answers a request found in the table whose body (if its route takes one) has been read:
/// the route's handler, `405` with `Allow` (a page of the web UI too: `GET` only), the web UI
/// for other `GET`s, or `404`. Returns the reply and the route's template (for metrics): a file
/// of the web UI is `static`, a path that names nothing `-`.
pub fn answer(app: &App, req: &mut Req, found: Found<'_>) -> (Result<Reply>, &'static str) {
    match found {
        Found::Route(route, params) => {
            req.params = params.into_iter().map(str::to_string).collect();
            // Who is asking comes before what they asked: a caller without a valid token is
            // 401 and one whose role may never call the route 403, whatever its query says
            // (a route with a body was asked both before its body was read).
            let caller_known = match route.access {
                Access::Bearer if !req.is_authenticated() => req
                    .authenticate(app)
                    .and_then(|()| route.check_role(req, app)),
                _ => Ok(()),
            };
            let answered = caller_known
                .and_then(|()| route.check_query(req))
                .and_then(|()| (route.handler)(app, req))
                .or_else(|e| answered_before(app, req, route, e));
            (answered, route.path)
        }
        Found::WrongMethod(template, allowed) => {
            let mut allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            // Every GET is a HEAD too.
            if allowed.contains(&Method::Get) {
                allow.push("HEAD");
            }
            let reply = error_reply(&Error::MethodNotAllowed, &req.request_id)
                .with_header("Allow", allow.join(", "));
            (Ok(reply), template)
        }
        Found::NoRoute if req.method == Method::Get => {
            let file = assets::serve(&req.path);
            (
                file,
                if assets::exists(&req.path) {
                    "static"
                } else {
                    "-"
                },
            )
        }
        Found::NoRoute if assets::exists(&req.path) => {
            let reply = error_reply(&Error::MethodNotAllowed, &req.request_id)
                .with_header("Allow", "GET, HEAD");
            (Ok(reply), "static")
        }
        Found::NoRoute => (Err(Error::NotFound { what: "route" }), "-"),
    }
}

/// A request refused before it ran, as sent (`400`) or for an id that names nothing (`404`: one
/// that cannot be an id is refused before anything is read), whose idempotency key already
/// answered: the same request is answered as it was (a retry after an operator lowered a limit,
/// `REMIT_MAX_ESCROW_USD`, was told its deposit was refused, though it stood); another is that
/// key reused (`422`), as a valid different request is, whatever else is wrong with it.
fn answered_before(app: &App, req: &Req, route: &Route, e: Error) -> Result<Reply> {
    if route.method != Method::Post
        || !matches!(status_of(&e), 400 | 404)
        || req.idempotency_key().is_none()
    {
        return Err(e);
    }
    let Some(actor) = req.authenticated_actor() else {
        return Err(e);
    };
    let stored =
        super::idempotency::key_of(app.store.keys(), req, actor).and_then(|key| match key {
            Some(key) => app
                .store
                .read(|conn, keys| crate::service::idempotency::lookup_in(conn, keys, &key))
                .map(Some),
            None => Ok(None),
        });
    match stored {
        // Only a refusal of a value (a limit) or of what an id names: a body refused as written
        // (a field given twice, an unknown field of `null`) can read as the same request to the
        // key's fingerprint, which takes the last of a field given twice and leaves `null`s
        // out, and its replay told a client that sent 999 that its deposit of 5 stood.
        Ok(Some(Lookup::Replay(stored)))
            if matches!(
                e,
                Error::Validation { .. } | Error::NotFound { .. } | Error::NotFoundAmong { .. }
            ) =>
        {
            Ok(super::idempotency::replayed(stored))
        }
        Ok(Some(Lookup::Reused)) => Err(Error::IdempotencyKeyReused),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_templates_and_params() {
        let Found::Route(route, params) = find(Method::Post, "/payment-requests/pr_1/approve")
        else {
            panic!("no route");
        };
        assert_eq!(
            (route.path, params),
            ("/payment-requests/:id/approve", vec!["pr_1"])
        );
        assert!(matches!(
            find(Method::Post, "/escrows//cancel"),
            Found::NoRoute
        ));
        assert!(matches!(
            find(Method::Get, "/../../etc/passwd"),
            Found::NoRoute
        ));
        for other in ["//users", "users", "health", "//health", ""] {
            assert!(
                matches!(find(Method::Get, other), Found::NoRoute),
                "{other:?} is routed"
            );
        }
        assert!(matches!(
            find(Method::Delete, "/escrows"),
            Found::WrongMethod("/escrows", m) if m == vec![Method::Get, Method::Post]
        ));
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method.as_str(),
                    a.path
                );
            }
        }
    }

    /// The document's operations: `(METHOD, /path/{param})`.
    fn documented() -> (serde_json::Value, Vec<(String, String)>) {
        let doc: serde_json::Value =
            serde_json::from_str(super::admin::OPENAPI_JSON).expect("docs/openapi.json is JSON");
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
        (doc, ops)
    }

    /// A route's template as OpenAPI writes it: `/escrows/:id` → `/escrows/{id}`.
    fn openapi_path(template: &str) -> String {
        template
            .split('/')
            .map(|part| match part.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => part.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// An operation's parameters `in` one place, `$ref`s resolved.
    fn parameters(doc: &serde_json::Value, op: &serde_json::Value, place: &str) -> Vec<String> {
        let mut names: Vec<String> = op["parameters"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| match p["$ref"].as_str() {
                Some(r) => {
                    let name = r.trim_start_matches("#/components/parameters/");
                    doc["components"]["parameters"][name].clone()
                }
                None => p.clone(),
            })
            .filter(|p| p["in"] == place)
            .map(|p| p["name"].as_str().expect("a parameter's name").to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_openapi_document_has_every_route_and_nothing_else() {
        let (_, documented) = documented();
        let ui = super::assets::DOCUMENTED_PATHS
            .iter()
            .map(|path| ("GET".to_string(), path.to_string()));
        let served: Vec<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.as_str().to_string(), openapi_path(r.path)))
            .chain(ui)
            .collect();
        let undocumented: Vec<_> = served.iter().filter(|r| !documented.contains(r)).collect();
        let unserved: Vec<_> = documented.iter().filter(|d| !served.contains(d)).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from docs/openapi.json: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "docs/openapi.json documents routes the server does not have: {unserved:?}"
        );
    }

    #[test]
    fn the_openapi_document_has_every_routes_parameters_and_access() {
        let (doc, _) = documented();
        for route in ROUTES {
            let path = openapi_path(route.path);
            let op = &doc["paths"][&path][route.method.as_str().to_lowercase()];
            let name = format!("{} {path}", route.method.as_str());
            let mut query: Vec<String> = route.query.iter().map(|q| q.to_string()).collect();
            query.sort();
            assert_eq!(
                parameters(&doc, op, "query"),
                query,
                "query parameters of {name}"
            );
            let mut in_path: Vec<String> = route
                .path
                .split('/')
                .filter_map(|p| p.strip_prefix(':'))
                .map(str::to_string)
                .collect();
            in_path.sort();
            assert_eq!(
                parameters(&doc, op, "path"),
                in_path,
                "path parameters of {name}"
            );
            // A bearer route names the bearer scheme; a public one or a webhook may be called
            // without it.
            let security = op["security"]
                .as_array()
                .expect("every operation says its security");
            let bearer = security.iter().any(|s| s.get("bearerAuth").is_some());
            let anonymous =
                security.is_empty() || security.iter().any(|s| s == &serde_json::json!({}));
            match route.access {
                Access::Bearer => assert!(bearer && !anonymous, "{name} needs a bearer token"),
                Access::Public | Access::Webhook | Access::PathToken => {
                    assert!(anonymous, "{name} is callable without a token")
                }
            }
            assert_eq!(
                op.get("requestBody").is_some(),
                route.takes_body(),
                "request body of {name}"
            );
        }
    }

    /// The document's `x-roles` are the router's: an operation the route allows to some roles
    /// only lists them and admins (who may call every operation), and no other operation has
    /// them. Before, three operations left admins out, though admins may call them.
    #[test]
    fn every_operations_roles_are_the_routers() {
        let (doc, _) = documented();
        let mut checked = Vec::new();
        for route in ROUTES {
            let Some(roles) = route.roles else { continue };
            let path = openapi_path(route.path);
            let method = route.method.as_str().to_lowercase();
            let mut expected: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            expected.push("admin");
            expected.sort_unstable();
            expected.dedup();
            let mut listed: Vec<&str> = doc["paths"][&path][&method]["x-roles"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} has no x-roles"))
                .iter()
                .map(|r| r.as_str().expect("a role"))
                .collect();
            listed.sort_unstable();
            assert_eq!(listed, expected, "{method} {path}");
            checked.push((method, path));
        }
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("a path item") {
                assert!(
                    op.get("x-roles").is_none()
                        || checked.contains(&(method.clone(), path.clone())),
                    "{method} {path} lists roles the router does not check"
                );
            }
        }
    }
}
