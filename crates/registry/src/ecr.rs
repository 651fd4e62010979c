//! Amazon ECR: AWS credentials from the SDK's standard chain (environment, web identity token
//! file as IRSA sets it, EKS Pod Identity, instance metadata), `GetAuthorizationToken` in the
//! registry's region, the token used as `AWS:<password>` until shortly before `expiresAt`.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use futures::future::BoxFuture;

use crate::cloud::{CloudProvider, TokenProvider, cloud_source, ecr_region};
use crate::config::CaCertificates;
use crate::credentials::Credential;
use crate::error::{AwsOperation, CloudProblem, CredentialProblem, Error, Result};
use crate::source::{CloudLogin, SourcedCredential};

/// Gives the AWS SDK's configuration, loaded once on first use. The binary supplies it (it
/// reads the environment: `AWS_REGION`, `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`,
/// `AWS_ENDPOINT_URL_ECR`, …); the library never does.
pub type SdkConfigLoader = Arc<dyn Fn() -> BoxFuture<'static, aws_config::SdkConfig> + Send + Sync>;

/// The HTTPS client for the AWS SDK (STS, EKS Pod Identity, ECR) that trusts `ca` (the
/// client's `--ca-file`) besides the system's roots: the SDK's own client (rustls, aws-lc-rs)
/// with those certificates added; `None` when `ca` is empty (the SDK's default client then).
/// The binary hands it to `aws_config`'s loader.
pub fn sdk_http_client(
    ca: &CaCertificates,
) -> Result<Option<aws_sdk_ecr::config::SharedHttpClient>> {
    use aws_smithy_http_client::tls;
    let Some(pem) = ca.pem() else {
        return Ok(None);
    };
    let trust = tls::TrustStore::default().with_pem_certificate(pem.to_vec());
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| Error::Config(crate::ConfigProblem::AwsHttp(e)))?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https();
    Ok(Some(http))
}

/// ECR's [`TokenProvider`].
pub struct Ecr {
    loader: SdkConfigLoader,
    sdk: tokio::sync::OnceCell<aws_config::SdkConfig>,
}

impl fmt::Debug for Ecr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Ecr")
    }
}

impl Ecr {
    /// ECR logins with the SDK configuration `loader` gives.
    pub fn new(loader: SdkConfigLoader) -> Self {
        Ecr {
            loader,
            sdk: tokio::sync::OnceCell::new(),
        }
    }

    async fn token(
        &self,
        registry: &str,
    ) -> std::result::Result<Option<SourcedCredential>, CloudProblem> {
        let host = registry.split(':').next().unwrap_or_default();
        let region = ecr_region(host)
            .ok_or(CloudProblem::NotItsHost)?
            .to_string();
        let sdk = self.sdk.get_or_init(|| (self.loader)()).await;
        let Some(credentials) = credentials(sdk).await? else {
            tracing::warn!(
                registry,
                "no AWS credentials found (environment, web identity, Pod Identity, instance metadata, profile): ECR requests are anonymous"
            );
            return Ok(None);
        };
        // Signed with exactly the credentials just obtained: one STS call per ECR login (web
        // identity, Pod Identity), none kept past it.
        let conf = aws_sdk_ecr::config::Builder::from(sdk)
            .region(aws_config::Region::new(region.clone()))
            .credentials_provider(credentials)
            .build();
        let client = aws_sdk_ecr::Client::from_conf(conf);
        let operation = AwsOperation::GetAuthorizationToken {
            region: region.clone(),
        };
        let out = client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| CloudProblem::Aws {
                operation: operation.clone(),
                source: Box::new(e),
            })?;
        let incomplete = |missing| CloudProblem::Incomplete {
            from: operation.to_string(),
            missing,
        };
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| incomplete("no authorizationData"))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| incomplete("no authorizationToken"))?;
        let not_basic = "authorizationToken is not base64 of user:password";
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| incomplete(not_basic))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| incomplete(not_basic))?;
        let expires_at = data
            .expires_at()
            .and_then(|t| std::time::SystemTime::try_from(*t).ok());
        Ok(Some(SourcedCredential {
            source: cloud_source(
                CloudProvider::Aws,
                CloudLogin::EcrToken {
                    region: region.clone(),
                },
            ),
            secret: Credential::Basic {
                username: user.to_string(),
                password: password.to_string(),
            },
            expires_at,
        }))
    }
}

/// The SDK's credential chain's current credentials: `None` when none is configured anywhere
/// (not on AWS), an error when one is configured but fails (an STS refusal).
async fn credentials(
    sdk: &aws_config::SdkConfig,
) -> std::result::Result<Option<aws_credential_types::Credentials>, CloudProblem> {
    use aws_credential_types::provider::ProvideCredentials as _;
    use aws_credential_types::provider::error::CredentialsError;
    let Some(provider) = sdk.credentials_provider() else {
        return Ok(None);
    };
    match provider.provide_credentials().await {
        Ok(c) => Ok(Some(c)),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Ok(None),
        Err(e) => Err(CloudProblem::Aws {
            operation: AwsOperation::Credentials,
            source: Box::new(e),
        }),
    }
}

impl TokenProvider for Ecr {
    fn provider(&self) -> CloudProvider {
        CloudProvider::Aws
    }

    fn fetch<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<SourcedCredential>>> {
        Box::pin(async move {
            self.token(registry)
                .await
                .map_err(|problem| Error::Credentials {
                    registry: registry.to_string(),
                    problem: CredentialProblem::Cloud {
                        provider: CloudProvider::Aws,
                        problem,
                    },
                })
        })
    }
}
