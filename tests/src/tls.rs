//! An HTTPS front on `127.0.0.1`: a certificate for 127.0.0.1 signed by a throw-away CA
//! (what a TLS-intercepting proxy or a private CA looks like to ferry), each connection's
//! bytes passed on to a plain-HTTP server (a wiremock fake of a token service). It runs on a
//! thread of its own (as wiremock does), so a test may block on a ferry process meanwhile;
//! stopped on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// HTTPS in front of a plain-HTTP server.
pub struct TlsFront {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TlsFront {
    /// Serve HTTPS on a random port of 127.0.0.1, passing connections on to `backend`.
    pub fn start(backend: SocketAddr) -> TlsFront {
        let dir = tempfile::tempdir().unwrap();
        crate::make_certificates(dir.path());
        let certs = CertificateDer::pem_file_iter(dir.path().join("server.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let serve = async {
                    while let Ok((tcp, _)) = listener.accept().await {
                        tokio::spawn(pass_on(acceptor.clone(), tcp, backend));
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = stopped => {}
                }
            });
        });
        TlsFront {
            addr,
            dir,
            stop: Some(stop),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate that signed the front's certificate (what `--ca-file` names).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

/// One connection: the TLS handshake (a client that does not trust the CA ends it), then
/// bytes both ways until either side closes.
async fn pass_on(acceptor: TlsAcceptor, tcp: TcpStream, backend: SocketAddr) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let Ok(mut plain) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
