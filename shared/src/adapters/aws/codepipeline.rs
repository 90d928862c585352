//! [`PipelineDirectory`] over the CodePipeline `ListPipelines` and `GetPipeline` APIs.
//!
//! `ListPipelines` gives the names of every pipeline of the account and region (every page);
//! `GetPipeline` gives one pipeline's structure, from which the service role and the
//! connection-based source actions are read: every action, in any stage, whose provider is
//! [`CONNECTION_SOURCE_PROVIDER`] (`CodeStarSourceConnection`), with its `ConnectionArn`,
//! `FullRepositoryId` and `BranchName` configuration values as written (either ARN prefix,
//! DESIGN §4.7). Other actions (CodeCommit, S3, ECR sources, builds, deploys) are ignored.
//!
//! IAM: `codepipeline:ListPipelines` (resource `*`) and `codepipeline:GetPipeline` (on the
//! pipelines, or `*`).
//!
//! A listing is all or nothing, as for connections: every page or an error, so that a pipeline
//! missing from the listing can be taken as deleted. A pipeline that does not exist
//! (`PipelineNotFoundException`) is `Ok(None)`, not an error.

use aws_sdk_codepipeline::operation::get_pipeline::GetPipelineError;
use aws_sdk_codepipeline::types::PipelineDeclaration;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{ErrorClass, classify};
use crate::domain::inventory::{CONNECTION_SOURCE_PROVIDER, PipelineInfo, SourceAction};
use crate::ports::{BoxError, DirectoryError, PipelineDirectory};

/// The `api` of errors from CodePipeline.
const CODEPIPELINE: &str = "codepipeline";

/// The action configuration key of the connection ARN.
const CONNECTION_ARN: &str = "ConnectionArn";
/// The action configuration key of the repository (`owner/repo`).
const FULL_REPOSITORY_ID: &str = "FullRepositoryId";
/// The action configuration key of the branch.
const BRANCH_NAME: &str = "BranchName";

/// Reads pipelines with `ListPipelines` and `GetPipeline`.
#[derive(Debug, Clone)]
pub struct AwsPipelineDirectory {
    client: aws_sdk_codepipeline::Client,
}

impl AwsPipelineDirectory {
    /// A directory over the given CodePipeline client.
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Self { client }
    }
}

impl PipelineDirectory for AwsPipelineDirectory {
    async fn list_pipeline_names(&self) -> Result<Vec<String>, DirectoryError> {
        // The largest page the API allows: fewer calls per run in accounts with many pipelines.
        let mut pages = self.client.list_pipelines().max_results(1000).into_paginator().send();
        let mut names = Vec::new();
        let mut page_number = 0_u32;
        while let Some(page) = pages.next().await {
            let page = page.map_err(sdk_failure)?;
            page_number += 1;
            tracing::debug!(
                api = CODEPIPELINE,
                page = page_number,
                pipelines = page.pipelines().len(),
                more = page.next_token().is_some(),
                "listed a page of pipelines"
            );
            for summary in page.pipelines() {
                // A summary without a name cannot be skipped: the pipeline would look deleted.
                let name = summary.name().filter(|n| !n.is_empty()).ok_or_else(|| DirectoryError::Service {
                    api: CODEPIPELINE,
                    source: "ListPipelines returned a pipeline without a name".into(),
                })?;
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineInfo>, DirectoryError> {
        let output = match self.client.get_pipeline().name(name).send().await {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(GetPipelineError::is_pipeline_not_found_exception) => {
                tracing::debug!(api = CODEPIPELINE, pipeline = name, "pipeline not found");
                return Ok(None);
            }
            Err(e) => return Err(sdk_failure(e)),
        };
        let declaration = output.pipeline().ok_or_else(|| DirectoryError::Service {
            api: CODEPIPELINE,
            source: format!("GetPipeline returned no declaration for pipeline {name}").into(),
        })?;
        Ok(Some(to_pipeline_info(name, declaration)))
    }
}

/// Reads what connwatch needs from a pipeline declaration.
fn to_pipeline_info(name: &str, declaration: &PipelineDeclaration) -> PipelineInfo {
    let sources = declaration
        .stages()
        .iter()
        .flat_map(|stage| stage.actions().iter().map(move |action| (stage, action)))
        .filter(|(_, action)| action.action_type_id().is_some_and(|t| t.provider() == CONNECTION_SOURCE_PROVIDER))
        .map(|(stage, action)| {
            let value = |key: &str| action.configuration().and_then(|c| c.get(key)).cloned();
            SourceAction {
                stage: stage.name().to_owned(),
                action: action.name().to_owned(),
                connection_arn: value(CONNECTION_ARN),
                repository: value(FULL_REPOSITORY_ID),
                branch: value(BRANCH_NAME),
            }
        })
        .collect();
    PipelineInfo {
        name: name.to_owned(),
        // Required by the API, but the SDK defaults a missing one to "".
        role_arn: Some(declaration.role_arn()).filter(|r| !r.is_empty()).map(str::to_owned),
        sources,
    }
}

/// Maps an SDK error (after the SDK's own retries) to the directory error of its class.
fn sdk_failure<E>(error: SdkError<E, HttpResponse>) -> DirectoryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let class = classify(&error);
    let source: BoxError = Box::new(error);
    match class {
        ErrorClass::Throttled => DirectoryError::Throttled { api: CODEPIPELINE, source },
        ErrorClass::AccessDenied => DirectoryError::AccessDenied { api: CODEPIPELINE, source },
        ErrorClass::Other => DirectoryError::Service { api: CODEPIPELINE, source },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_codepipeline::Client;
    use aws_sdk_codepipeline::operation::get_pipeline::GetPipelineOutput;
    use aws_sdk_codepipeline::operation::list_pipelines::{ListPipelinesError, ListPipelinesOutput};
    use aws_sdk_codepipeline::types::error::PipelineNotFoundException;
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, PipelineSummary, StageDeclaration,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/pipeline-role";
    const CS_ARN: &str =
        "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0f5b706a-1a1d-46c5-86b6-f177321bcfb2";
    const CC_ARN: &str =
        "arn:aws:codeconnections:eu-west-1:123456789012:connection/1a2b3c4d-0000-4000-8000-000000000002";

    /// A client over the rules, retrying up to 3 attempts with a negligible back-off so retry
    /// tests run in milliseconds.
    fn client(rules: &[&Rule]) -> Client {
        mock_client!(aws_sdk_codepipeline, RuleMode::Sequential, rules, |b| b.retry_config(
            aws_sdk_codepipeline::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        ))
    }

    fn page(names: &[&str], next: Option<&str>) -> ListPipelinesOutput {
        ListPipelinesOutput::builder()
            .set_pipelines(Some(names.iter().map(|n| PipelineSummary::builder().name(*n).build()).collect()))
            .set_next_token(next.map(str::to_owned))
            .build()
    }

    fn action(
        name: &str,
        category: ActionCategory,
        provider: &str,
        configuration: &[(&str, &str)],
    ) -> ActionDeclaration {
        ActionDeclaration::builder()
            .name(name)
            .action_type_id(
                ActionTypeId::builder()
                    .category(category)
                    .owner(ActionOwner::Aws)
                    .provider(provider)
                    .version("1")
                    .build()
                    .unwrap(),
            )
            .set_configuration(Some(configuration.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()))
            .build()
            .unwrap()
    }

    fn connection_source(name: &str, arn: &str, repository: &str, branch: &str) -> ActionDeclaration {
        action(
            name,
            ActionCategory::Source,
            CONNECTION_SOURCE_PROVIDER,
            &[
                ("ConnectionArn", arn),
                ("FullRepositoryId", repository),
                ("BranchName", branch),
                ("OutputArtifactFormat", "CODE_ZIP"),
            ],
        )
    }

    fn stage(name: &str, actions: Vec<ActionDeclaration>) -> StageDeclaration {
        StageDeclaration::builder().name(name).set_actions(Some(actions)).build().unwrap()
    }

    fn pipeline(name: &str, stages: Vec<StageDeclaration>) -> GetPipelineOutput {
        GetPipelineOutput::builder()
            .pipeline(
                PipelineDeclaration::builder().name(name).role_arn(ROLE).set_stages(Some(stages)).build().unwrap(),
            )
            .build()
    }

    fn list_throttled() -> ListPipelinesError {
        ListPipelinesError::generic(
            ErrorMetadata::builder().code("ThrottlingException").message("Rate exceeded").build(),
        )
    }

    #[tokio::test]
    async fn every_page_of_the_listing_is_returned() {
        let first = mock!(Client::list_pipelines)
            .match_requests(|r| r.next_token().is_none())
            .then_output(|| page(&["web-prod", "api-prod"], Some("t2")));
        let second = mock!(Client::list_pipelines)
            .match_requests(|r| r.next_token() == Some("t2"))
            .then_output(|| page(&["worker"], Some("t3")));
        let third = mock!(Client::list_pipelines)
            .match_requests(|r| r.next_token() == Some("t3"))
            .then_output(|| page(&["infra"], None));
        let directory = AwsPipelineDirectory::new(client(&[&first, &second, &third]));

        let names = directory.list_pipeline_names().await.unwrap();

        assert_eq!(names, ["web-prod", "api-prod", "worker", "infra"]);
        assert_eq!((first.num_calls(), second.num_calls(), third.num_calls()), (1, 1, 1));
    }

    #[tokio::test]
    async fn throttling_on_a_later_page_fails_the_whole_listing() {
        let first = mock!(Client::list_pipelines).then_output(|| page(&["web-prod"], Some("t2")));
        let second = mock!(Client::list_pipelines).sequence().error(list_throttled).repeatedly().build();
        let directory = AwsPipelineDirectory::new(client(&[&first, &second]));

        let error = directory.list_pipeline_names().await.unwrap_err();

        assert!(matches!(error, DirectoryError::Throttled { api: "codepipeline", .. }), "{error:?}");
    }

    #[tokio::test]
    async fn only_connection_sources_are_kept_with_their_configuration_and_the_role() {
        let rule = mock!(Client::get_pipeline).match_requests(|r| r.name() == Some("web-prod")).then_output(|| {
            pipeline(
                "web-prod",
                vec![
                    stage(
                        "Source",
                        vec![
                            connection_source("App", CS_ARN, "acme/web", "main"),
                            action(
                                "Legacy",
                                ActionCategory::Source,
                                "CodeCommit",
                                &[("RepositoryName", "legacy"), ("BranchName", "master")],
                            ),
                        ],
                    ),
                    stage(
                        "Build",
                        vec![action("Build", ActionCategory::Build, "CodeBuild", &[("ProjectName", "web")])],
                    ),
                ],
            )
        });
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let info = directory.get_pipeline("web-prod").await.unwrap().unwrap();

        assert_eq!(
            info,
            PipelineInfo {
                name: "web-prod".to_owned(),
                role_arn: Some(ROLE.to_owned()),
                sources: vec![SourceAction {
                    stage: "Source".to_owned(),
                    action: "App".to_owned(),
                    connection_arn: Some(CS_ARN.to_owned()),
                    repository: Some("acme/web".to_owned()),
                    branch: Some("main".to_owned()),
                }],
            }
        );
        assert!(info.sources[0].connection().is_some(), "the ARN parses");
    }

    #[tokio::test]
    async fn connection_sources_under_both_arn_prefixes_are_kept() {
        let rule = mock!(Client::get_pipeline).then_output(|| {
            pipeline(
                "mono",
                vec![stage(
                    "Source",
                    vec![
                        connection_source("Web", CS_ARN, "acme/web", "main"),
                        connection_source("Lib", CC_ARN, "acme/lib", "release"),
                    ],
                )],
            )
        });
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let info = directory.get_pipeline("mono").await.unwrap().unwrap();

        let arns: Vec<_> = info.sources.iter().map(|s| s.connection_arn.as_deref()).collect();
        assert_eq!(arns, [Some(CS_ARN), Some(CC_ARN)]);
        let ids: Vec<_> = info.sources.iter().map(|s| s.connection().unwrap().id().as_str().to_owned()).collect();
        assert_eq!(ids, ["0f5b706a-1a1d-46c5-86b6-f177321bcfb2", "1a2b3c4d-0000-4000-8000-000000000002"]);
        assert_eq!(info.source("Lib").and_then(|s| s.branch.as_deref()), Some("release"));
    }

    #[tokio::test]
    async fn a_connection_source_without_configuration_is_kept_with_empty_values() {
        let rule = mock!(Client::get_pipeline).then_output(|| {
            let bare = ActionDeclaration::builder()
                .name("Bare")
                .action_type_id(
                    ActionTypeId::builder()
                        .category(ActionCategory::Source)
                        .owner(ActionOwner::Aws)
                        .provider(CONNECTION_SOURCE_PROVIDER)
                        .version("1")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap();
            pipeline("bare", vec![stage("Source", vec![bare])])
        });
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let info = directory.get_pipeline("bare").await.unwrap().unwrap();

        assert_eq!(info.sources.len(), 1);
        assert_eq!((&info.sources[0].connection_arn, &info.sources[0].branch), (&None, &None));
    }

    #[tokio::test]
    async fn a_missing_pipeline_is_none() {
        let rule = mock!(Client::get_pipeline).then_error(|| {
            GetPipelineError::PipelineNotFoundException(
                PipelineNotFoundException::builder().message("Account '123456789012' does not have a pipeline").build(),
            )
        });
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        assert_eq!(directory.get_pipeline("gone").await.unwrap(), None);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn throttling_on_every_attempt_is_a_throttled_error() {
        let rule = mock!(Client::get_pipeline)
            .sequence()
            .error(|| {
                GetPipelineError::generic(
                    ErrorMetadata::builder().code("ThrottlingException").message("Rate exceeded").build(),
                )
            })
            .repeatedly()
            .build();
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let error = directory.get_pipeline("web-prod").await.unwrap_err();

        assert!(matches!(error, DirectoryError::Throttled { api: "codepipeline", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 3, "the SDK's 3 attempts");
        assert_eq!(error.reason(), "throttled");
    }

    #[tokio::test]
    async fn access_denied_is_an_access_denied_error() {
        let rule = mock!(Client::list_pipelines).then_error(|| {
            ListPipelinesError::generic(
                ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform: codepipeline:ListPipelines")
                    .build(),
            )
        });
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let error = directory.list_pipeline_names().await.unwrap_err();

        assert!(matches!(error, DirectoryError::AccessDenied { api: "codepipeline", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 1, "a denial is not retried");
        assert!(crate::error_chain(&error).contains("ListPipelines"), "the SDK error is kept as the source");
    }

    #[tokio::test]
    async fn a_server_error_after_retries_is_a_service_error() {
        let rule = mock!(Client::get_pipeline).sequence().http_status(500, None).repeatedly().build();
        let directory = AwsPipelineDirectory::new(client(&[&rule]));

        let error = directory.get_pipeline("web-prod").await.unwrap_err();

        assert!(matches!(error, DirectoryError::Service { api: "codepipeline", .. }), "{error:?}");
        assert_eq!(rule.num_calls(), 3, "5xx is retried");
    }
}
