//! [`ConnectionDirectory`] over the CodeConnections `ListConnections` API, in both namespaces.
//!
//! The service answers under two names, `codeconnections` (current) and
//! `codestar-connections` (original); both list the same connections, with ARNs that differ
//! only by prefix (DESIGN §4.7). Either or both can be enabled; the listings are merged by
//! connection id, and the `codeconnections` entry wins when both list the same id.
//!
//! IAM: `codeconnections:ListConnections` and/or `codestar-connections:ListConnections`
//! (resource `*`), for whichever API is enabled.
//!
//! A listing is all or nothing: every page of every enabled API, or an error. The health
//! check concludes "deleted" from what is missing in a listing, so a partial listing (a page
//! that failed, a connection that could not be read) must never be returned as if complete.

use std::collections::BTreeMap;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{ErrorClass, classify};
use crate::domain::connection::{ArnError, Connection, ConnectionArn, ConnectionId, ConnectionStatus, ProviderType};
use crate::ports::{BoxError, ConnectionDirectory, DirectoryError};

/// The `api` of errors from the current API.
const CODECONNECTIONS: &str = "codeconnections";
/// The `api` of errors from the original API.
const CODESTAR_CONNECTIONS: &str = "codestar-connections";

/// Lists connections with `ListConnections` on the enabled connection APIs.
#[derive(Debug, Clone)]
pub struct AwsConnectionDirectory {
    codeconnections: Option<aws_sdk_codeconnections::Client>,
    codestar: Option<aws_sdk_codestarconnections::Client>,
}

impl AwsConnectionDirectory {
    /// A directory over the given clients; `None` disables that API. At least one should be
    /// given: with neither, every listing fails (an empty listing would read as "all deleted").
    pub fn new(
        codeconnections: Option<aws_sdk_codeconnections::Client>,
        codestar: Option<aws_sdk_codestarconnections::Client>,
    ) -> Self {
        Self { codeconnections, codestar }
    }
}

impl ConnectionDirectory for AwsConnectionDirectory {
    async fn list_connections(&self) -> Result<Vec<Connection>, DirectoryError> {
        if self.codeconnections.is_none() && self.codestar.is_none() {
            return Err(DirectoryError::Service { api: "none", source: "no connection listing API is enabled".into() });
        }
        // Keyed by id so the two namespaces collapse into one entry per connection, and sorted
        // so the listing order is stable from run to run.
        let mut merged: BTreeMap<ConnectionId, Connection> = BTreeMap::new();
        if let Some(client) = &self.codeconnections {
            for connection in list_codeconnections(client).await? {
                merged.insert(connection.id().clone(), connection);
            }
        }
        if let Some(client) = &self.codestar {
            for connection in list_codestar(client).await? {
                // The codeconnections entry, if any, wins: it is the current namespace.
                merged.entry(connection.id().clone()).or_insert(connection);
            }
        }
        Ok(merged.into_values().collect())
    }
}

/// Every page of `ListConnections` on the `codeconnections` API.
async fn list_codeconnections(client: &aws_sdk_codeconnections::Client) -> Result<Vec<Connection>, DirectoryError> {
    let mut pages = client.list_connections().into_paginator().send();
    let mut connections = Vec::new();
    let mut page_number = 0_u32;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_failure(CODECONNECTIONS, e))?;
        page_number += 1;
        tracing::debug!(
            api = CODECONNECTIONS,
            page = page_number,
            connections = page.connections().len(),
            more = page.next_token().is_some(),
            "listed a page of connections"
        );
        for listed in page.connections() {
            let connection = to_connection(Listed {
                name: listed.connection_name(),
                arn: listed.connection_arn(),
                provider: listed.provider_type().map(|p| p.as_str()),
                status: listed.connection_status().map(|s| s.as_str()),
                owner_account_id: listed.owner_account_id(),
                host_arn: listed.host_arn(),
            })
            .map_err(|e| DirectoryError::Service { api: CODECONNECTIONS, source: Box::new(e) })?;
            connections.push(connection);
        }
    }
    Ok(connections)
}

/// Every page of `ListConnections` on the `codestar-connections` API.
async fn list_codestar(client: &aws_sdk_codestarconnections::Client) -> Result<Vec<Connection>, DirectoryError> {
    let mut pages = client.list_connections().into_paginator().send();
    let mut connections = Vec::new();
    let mut page_number = 0_u32;
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_failure(CODESTAR_CONNECTIONS, e))?;
        page_number += 1;
        tracing::debug!(
            api = CODESTAR_CONNECTIONS,
            page = page_number,
            connections = page.connections().len(),
            more = page.next_token().is_some(),
            "listed a page of connections"
        );
        for listed in page.connections() {
            let connection = to_connection(Listed {
                name: listed.connection_name(),
                arn: listed.connection_arn(),
                provider: listed.provider_type().map(|p| p.as_str()),
                status: listed.connection_status().map(|s| s.as_str()),
                owner_account_id: listed.owner_account_id(),
                host_arn: listed.host_arn(),
            })
            .map_err(|e| DirectoryError::Service { api: CODESTAR_CONNECTIONS, source: Box::new(e) })?;
            connections.push(connection);
        }
    }
    Ok(connections)
}

/// Maps an SDK error (after the SDK's own retries) to the directory error of its class.
fn sdk_failure<E>(api: &'static str, error: SdkError<E, HttpResponse>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let class = classify(&error);
    let source: BoxError = Box::new(error);
    match class {
        ErrorClass::Throttled => DirectoryError::Throttled { api, source },
        ErrorClass::AccessDenied => DirectoryError::AccessDenied { api, source },
        ErrorClass::Other => DirectoryError::Service { api, source },
    }
}

/// The fields of a listed connection, the same in both SDKs' types.
#[derive(Clone, Copy)]
struct Listed<'a> {
    name: Option<&'a str>,
    arn: Option<&'a str>,
    provider: Option<&'a str>,
    status: Option<&'a str>,
    owner_account_id: Option<&'a str>,
    host_arn: Option<&'a str>,
}

/// A connection in a `ListConnections` response that cannot be read. It fails the whole
/// listing: skipping it would make the connection look deleted.
#[derive(Debug, thiserror::Error)]
enum MalformedConnection {
    /// The ARN does not parse.
    #[error("listed connection has an unparsable ARN {arn:?}")]
    Arn {
        arn: String,
        #[source]
        source: ArnError,
    },
    /// A field every connection has is missing.
    #[error("listed connection {arn} has no {field}")]
    Missing { arn: String, field: &'static str },
}

/// Reads one listed connection into the domain type.
fn to_connection(listed: Listed<'_>) -> Result<Connection, MalformedConnection> {
    let raw_arn = listed.arn.unwrap_or_default();
    let arn =
        ConnectionArn::parse(raw_arn).map_err(|source| MalformedConnection::Arn { arn: raw_arn.to_owned(), source })?;
    let missing = |field| MalformedConnection::Missing { arn: raw_arn.to_owned(), field };
    let name = listed.name.filter(|n| !n.is_empty()).ok_or_else(|| missing("name"))?;
    let status = listed.status.filter(|s| !s.is_empty()).ok_or_else(|| missing("status"))?;
    let provider = listed.provider.filter(|p| !p.is_empty()).ok_or_else(|| missing("provider type"))?;
    Ok(Connection {
        arn,
        name: name.to_owned(),
        provider: ProviderType::parse(provider),
        status: ConnectionStatus::parse(status),
        owner_account_id: listed.owner_account_id.map(str::to_owned),
        host_arn: listed.host_arn.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_codeconnections::Client as CcClient;
    use aws_sdk_codeconnections::operation::list_connections::{
        ListConnectionsError as CcError, ListConnectionsOutput as CcOutput,
    };
    use aws_sdk_codeconnections::types::{
        Connection as CcConnection, ConnectionStatus as CcStatus, ProviderType as CcProvider,
    };
    use aws_sdk_codestarconnections::Client as CsClient;
    use aws_sdk_codestarconnections::operation::list_connections::ListConnectionsOutput as CsOutput;
    use aws_sdk_codestarconnections::types::{
        Connection as CsConnection, ConnectionStatus as CsStatus, ProviderType as CsProvider,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    const ID_A: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
    const ID_B: &str = "1a2b3c4d-0000-4000-8000-000000000002";
    const ID_C: &str = "1a2b3c4d-0000-4000-8000-000000000003";

    fn arn(prefix: &str, id: &str) -> String {
        format!("arn:aws:{prefix}:eu-west-1:123456789012:connection/{id}")
    }

    fn cc(id: &str, name: &str, status: CcStatus) -> CcConnection {
        CcConnection::builder()
            .connection_arn(arn("codeconnections", id))
            .connection_name(name)
            .provider_type(CcProvider::Bitbucket)
            .connection_status(status)
            .owner_account_id("acme")
            .build()
    }

    fn cs(id: &str, name: &str, status: CsStatus) -> CsConnection {
        CsConnection::builder()
            .connection_arn(arn("codestar-connections", id))
            .connection_name(name)
            .provider_type(CsProvider::Bitbucket)
            .connection_status(status)
            .build()
    }

    fn cc_page(connections: Vec<CcConnection>, next: Option<&str>) -> CcOutput {
        CcOutput::builder().set_connections(Some(connections)).set_next_token(next.map(str::to_owned)).build()
    }

    /// A codeconnections client over the rules, retrying up to 3 attempts with a negligible
    /// back-off so retry tests run in milliseconds.
    fn cc_client(rules: &[&Rule]) -> CcClient {
        mock_client!(aws_sdk_codeconnections, RuleMode::Sequential, rules, |b| b.retry_config(
            aws_sdk_codeconnections::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        ))
    }

    fn throttled() -> CcError {
        CcError::generic(ErrorMetadata::builder().code("ThrottlingException").message("Rate exceeded").build())
    }

    #[tokio::test]
    async fn every_page_of_the_listing_is_returned() {
        let pages = mock!(CcClient::list_connections)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| cc_page(vec![cc(ID_A, "a", CcStatus::Available)], Some("t2")));
        let page2 = mock!(CcClient::list_connections)
            .match_requests(|r| r.next_token() == Some("t2"))
            .then_output(|| cc_page(vec![cc(ID_B, "b", CcStatus::Error)], Some("t3")));
        let page3 = mock!(CcClient::list_connections)
            .match_requests(|r| r.next_token() == Some("t3"))
            .then_output(|| cc_page(vec![cc(ID_C, "c", CcStatus::Pending)], None));
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&pages, &page2, &page3])), None);

        let listing = directory.list_connections().await.unwrap();

        let names: Vec<_> = listing.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(listing[1].status, ConnectionStatus::Error);
        assert_eq!(listing[0].provider, ProviderType::Bitbucket);
        assert_eq!(listing[0].owner_account_id.as_deref(), Some("acme"));
        assert_eq!((pages.num_calls(), page2.num_calls(), page3.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn both_apis_are_merged_by_connection_id_and_codeconnections_wins() {
        let current = mock!(CcClient::list_connections)
            .then_output(|| cc_page(vec![cc(ID_A, "shared-new", CcStatus::Available)], None));
        let original = mock!(CsClient::list_connections).then_output(|| {
            CsOutput::builder()
                .connections(cs(ID_A, "shared-old", CsStatus::Available))
                .connections(cs(ID_B, "only-codestar", CsStatus::Pending))
                .build()
        });
        let codestar = mock_client!(aws_sdk_codestarconnections, [&original]);
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&current])), Some(codestar));

        let listing = directory.list_connections().await.unwrap();

        assert_eq!(listing.len(), 2, "{listing:?}");
        let shared = listing.iter().find(|c| c.id().as_str() == ID_A).unwrap();
        assert_eq!(shared.name, "shared-new");
        assert_eq!(shared.arn.to_string(), arn("codeconnections", ID_A));
        let only = listing.iter().find(|c| c.id().as_str() == ID_B).unwrap();
        assert_eq!(only.arn.to_string(), arn("codestar-connections", ID_B));
    }

    #[tokio::test]
    async fn a_throttled_page_is_retried_by_the_sdk() {
        let rule = mock!(CcClient::list_connections)
            .sequence()
            .error(throttled)
            .output(|| cc_page(vec![cc(ID_A, "a", CcStatus::Available)], None))
            .build();
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&rule])), None);

        let listing = directory.list_connections().await.unwrap();

        assert_eq!(listing.len(), 1);
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test]
    async fn throttling_on_every_attempt_is_a_throttled_error() {
        let rule = mock!(CcClient::list_connections).sequence().error(throttled).repeatedly().build();
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&rule])), None);

        let error = directory.list_connections().await.unwrap_err();

        assert!(matches!(error, DirectoryError::Throttled { api: "codeconnections", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 3, "the SDK's 3 attempts");
        assert_eq!(error.reason(), "throttled");
    }

    #[tokio::test]
    async fn throttling_on_a_later_page_fails_the_whole_listing() {
        let first = mock!(CcClient::list_connections)
            .then_output(|| cc_page(vec![cc(ID_A, "a", CcStatus::Available)], Some("t2")));
        let second = mock!(CcClient::list_connections).sequence().error(throttled).repeatedly().build();
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&first, &second])), None);

        let error = directory.list_connections().await.unwrap_err();

        assert!(matches!(error, DirectoryError::Throttled { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn access_denied_is_an_access_denied_error() {
        let rule = mock!(CsClient::list_connections).then_error(|| {
            aws_sdk_codestarconnections::operation::list_connections::ListConnectionsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: codestar-connections:ListConnections")
                    .build(),
            )
        });
        let directory = AwsConnectionDirectory::new(None, Some(mock_client!(aws_sdk_codestarconnections, [&rule])));

        let error = directory.list_connections().await.unwrap_err();

        assert!(matches!(error, DirectoryError::AccessDenied { api: "codestar-connections", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 1, "a denial is not retried");
        assert!(crate::error_chain(&error).contains("ListConnections"), "the SDK error is kept as the source");
    }

    #[tokio::test]
    async fn a_server_error_after_retries_is_a_service_error() {
        let rule = mock!(CcClient::list_connections).sequence().http_status(500, None).repeatedly().build();
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&rule])), None);

        let error = directory.list_connections().await.unwrap_err();

        assert!(matches!(error, DirectoryError::Service { api: "codeconnections", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 3, "5xx is retried");
    }

    #[tokio::test]
    async fn a_malformed_arn_fails_the_listing_instead_of_dropping_the_connection() {
        let first = mock!(CcClient::list_connections)
            .then_output(|| cc_page(vec![cc(ID_A, "a", CcStatus::Available)], Some("t2")));
        let second = mock!(CcClient::list_connections).then_output(|| {
            let broken = CcConnection::builder()
                .connection_arn("arn:aws:codeconnections:eu-west-1:123456789012:host/abc")
                .connection_name("b")
                .provider_type(CcProvider::Github)
                .connection_status(CcStatus::Available)
                .build();
            cc_page(vec![cc(ID_B, "ok", CcStatus::Available), broken], None)
        });
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&first, &second])), None);

        let error = directory.list_connections().await.unwrap_err();

        assert!(matches!(error, DirectoryError::Service { api: "codeconnections", .. }), "{error:?}");
        assert!(crate::error_chain(&error).contains("host/abc"), "{}", crate::error_chain(&error));
    }

    #[tokio::test]
    async fn a_connection_without_a_status_fails_the_listing() {
        let rule = mock!(CcClient::list_connections).then_output(|| {
            let no_status = CcConnection::builder()
                .connection_arn(arn("codeconnections", ID_A))
                .connection_name("a")
                .provider_type(CcProvider::Bitbucket)
                .build();
            cc_page(vec![no_status], None)
        });
        let directory = AwsConnectionDirectory::new(Some(cc_client(&[&rule])), None);

        let error = directory.list_connections().await.unwrap_err();

        assert!(crate::error_chain(&error).contains("has no status"), "{}", crate::error_chain(&error));
    }

    #[tokio::test]
    async fn with_no_api_enabled_the_listing_fails_rather_than_being_empty() {
        let directory = AwsConnectionDirectory::new(None, None);
        assert!(matches!(directory.list_connections().await, Err(DirectoryError::Service { .. })));
    }

    #[test]
    fn unknown_statuses_and_providers_from_the_sdk_are_kept() {
        let connection = to_connection(Listed {
            name: Some("x"),
            arn: Some(&arn("codeconnections", ID_A)),
            provider: Some("Gitea"),
            status: Some("SUSPENDED"),
            owner_account_id: None,
            host_arn: Some("arn:aws:codeconnections:eu-west-1:123456789012:host/h-1"),
        })
        .unwrap();
        assert_eq!(connection.status, ConnectionStatus::Unknown("SUSPENDED".to_owned()));
        assert_eq!(connection.provider, ProviderType::Unknown("Gitea".to_owned()));
        assert!(connection.host_arn.is_some());
    }
}
