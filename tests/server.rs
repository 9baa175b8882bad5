//! `strata serve` shared behaviour over real sockets: health endpoints,
//! bearer token, graceful shutdown.
#![cfg(feature = "server")]

mod server_support;

use server_support::{get, TestServer};
use strata::server::ServerConfig;
use strata::Options;

#[test]
fn health_endpoints_answer_without_a_token_and_the_rest_needs_it() {
    let config = ServerConfig {
        bearer_token: Some("s3cret".to_owned()),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, Options::default());
    assert_eq!(get(&server.url("/-/healthy"), &[]).status, 200);
    assert_eq!(get(&server.url("/-/ready"), &[]).status, 200);
    let refused = get(&server.url("/metrics"), &[]);
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let wrong = get(&server.url("/metrics"), &[("Authorization", "Bearer nope")]);
    assert_eq!(wrong.status, 401);
}
