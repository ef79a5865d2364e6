//! The HTTP requests Ampere makes to other servers (the operator's price
//! feed, identity providers): one kind of client, TLS by rustls with the
//! webpki roots, plain HTTP where the operator names it. Redirects are never
//! followed (a server cannot send Ampere's requests somewhere else).

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type HttpClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// A client sending request bodies of type `B`.
pub fn client<B>() -> Result<HttpClient<B>, engine::Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| engine::Error::Internal(format!("TLS settings: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}
