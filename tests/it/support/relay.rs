//! A TCP relay on 127.0.0.1 that can freeze the connections it carries: bytes stop flowing
//! both ways but the sockets stay open, as when a peer's host vanishes without a FIN (a
//! node lost, a NAT entry dropped). Connections made after a freeze flow normally.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Relay {
    pub addr: SocketAddr,
    /// Connections the relay's client has closed, frozen or not.
    pub closed_by_client: Arc<AtomicUsize>,
    freeze: watch::Sender<u64>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let (freeze, freezes) = watch::channel(0u64);
        let closed = closed_by_client.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let mut freezes = freezes.clone();
                let born = *freezes.borrow_and_update();
                let closed = closed.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let mut up = [0u8; 16384];
                    let mut down = [0u8; 16384];
                    let mut frozen = false;
                    loop {
                        tokio::select! {
                            changed = freezes.changed(), if !frozen => {
                                if changed.is_err() {
                                    return;
                                }
                                frozen = *freezes.borrow_and_update() > born;
                            }
                            n = cr.read(&mut up) => match n {
                                Ok(0) | Err(_) => {
                                    closed.fetch_add(1, Ordering::SeqCst);
                                    return;
                                }
                                // Frozen: what the client sends is swallowed, never delivered.
                                Ok(_) if frozen => {}
                                Ok(n) => {
                                    if sw.write_all(&up[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            },
                            n = sr.read(&mut down), if !frozen => match n {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if cw.write_all(&down[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            },
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            closed_by_client,
            freeze,
        }
    }

    /// Freezes every connection open now.
    pub fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }
}
