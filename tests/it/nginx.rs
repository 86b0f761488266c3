//! nginx specifics, beyond the journeys every front proxy runs in `front_proxies.rs` with the
//! configuration `docs/integrations.md` documents (`support::front::NGINX_SERVER`).

use crate::support::Options;
use crate::support::front::{Front, Gateway};

#[tokio::test]
async fn the_check_is_internal_and_xhr_calls_get_401_not_the_login() {
    let gw = Gateway::start(Front::Nginx, Options::default).await;
    let client = gw.stack.client();

    // The auth check is `internal`: clients cannot call it through nginx.
    let direct = client.get(gw.url("/oauth2/auth")).send().await.unwrap();
    assert_eq!(direct.status(), 404);

    // `@login` asks rocketgate again: an XMLHttpRequest is a script, not a navigation.
    let xhr = client
        .get(gw.url("/api/orders?page=2"))
        .header("accept", crate::support::HTML)
        .header("x-requested-with", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(xhr.status(), 401);
    assert!(
        xhr.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}
