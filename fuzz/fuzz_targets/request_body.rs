//! A POST with `Transfer-Encoding: chunked` whose body is arbitrary bytes, served by the real
//! server in-process (one connection over an in-memory pipe) to a skip route proxied to a
//! loopback echo upstream. Whatever the body, rocketgate answers within bounds and never with
//! a 5xx: a broken body is the client's fault (400), never an upstream failure.
#![no_main]
#![recursion_limit = "256"]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rocketgate::app::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn app() -> &'static Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    APP.get_or_init(|| runtime().block_on(rocketgate_fuzz::echo_gate()))
}

const HEAD: &[u8] =
    b"POST /p HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let app = app().clone();
    runtime().block_on(async move {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let serving = tokio::spawn(rocketgate::server::serve_io(
            app,
            server,
            "127.0.0.1:9".parse().unwrap(),
        ));
        let mut answer = Vec::new();
        let exchange = async {
            client.write_all(HEAD).await?;
            client.write_all(data).await?;
            client.shutdown().await?;
            client.read_to_end(&mut answer).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("rocketgate answered and closed the connection in time");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            !text.starts_with("HTTP/1.1 5"),
            "a request body made rocketgate answer with a server error: {text}"
        );
        serving.abort();
    });
});
