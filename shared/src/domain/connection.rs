//! Connections: ARNs in both namespaces, ids, statuses and providers.
//!
//! A connection is identified by its id (the UUID after `connection/`), never by the ARN
//! prefix: the same connection answers to `arn:aws:codestar-connections:…` and
//! `arn:aws:codeconnections:…` (DESIGN §4.7).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The service prefix an ARN was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ArnPrefix {
    /// `codestar-connections`, the original name of the service.
    #[serde(rename = "codestar-connections")]
    CodestarConnections,
    /// `codeconnections`, the current name of the service.
    #[serde(rename = "codeconnections")]
    Codeconnections,
}

impl ArnPrefix {
    /// The prefix as it appears in ARNs and IAM actions.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodestarConnections => "codestar-connections",
            Self::Codeconnections => "codeconnections",
        }
    }

    fn parse(service: &str) -> Option<Self> {
        match service {
            "codestar-connections" => Some(Self::CodestarConnections),
            "codeconnections" => Some(Self::Codeconnections),
            _ => None,
        }
    }
}

/// Why a string is not a connection ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// It does not have the six `:`-separated parts of an ARN.
    #[error("not an ARN (expected arn:<partition>:<service>:<region>:<account>:<resource>)")]
    NotAnArn,
    /// The service is neither `codestar-connections` nor `codeconnections`.
    #[error("service `{0}` is not codestar-connections or codeconnections")]
    WrongService(String),
    /// The region part is empty or holds characters a region never has.
    #[error("region `{0}` is not a valid region")]
    BadRegion(String),
    /// The account part is not twelve digits.
    #[error("account `{0}` is not a 12-digit account id")]
    BadAccount(String),
    /// The resource is not `connection/<id>` (hosts and other resources are not connections).
    #[error("resource `{0}` is not connection/<id>")]
    NotAConnection(String),
    /// The id after `connection/` is not a UUID.
    #[error("connection id `{0}` is not a UUID")]
    BadId(String),
}

/// The id of a connection: the UUID after `connection/`, lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// Parses a connection id; it must be a UUID (any case, stored lower-case).
    pub fn parse(raw: &str) -> Result<Self, ArnError> {
        uuid::Uuid::parse_str(raw).map(Self::from_uuid).map_err(|_| ArnError::BadId(raw.to_owned()))
    }

    /// The id of a UUID.
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(uuid.hyphenated().to_string())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed connection ARN, in either namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionArn {
    partition: String,
    prefix: ArnPrefix,
    region: String,
    account: String,
    id: ConnectionId,
}

impl ConnectionArn {
    /// Parses `arn:<partition>:<codestar-connections|codeconnections>:<region>:<account>:connection/<uuid>`.
    pub fn parse(raw: &str) -> Result<Self, ArnError> {
        let mut parts = raw.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ArnError::NotAnArn);
        };
        if partition.is_empty() || !partition.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return Err(ArnError::NotAnArn);
        }
        let prefix = ArnPrefix::parse(service).ok_or_else(|| ArnError::WrongService(service.to_owned()))?;
        if region.is_empty() || !region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(ArnError::BadRegion(region.to_owned()));
        }
        if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
            return Err(ArnError::BadAccount(account.to_owned()));
        }
        let id = resource.strip_prefix("connection/").ok_or_else(|| ArnError::NotAConnection(resource.to_owned()))?;
        Ok(Self {
            partition: partition.to_owned(),
            prefix,
            region: region.to_owned(),
            account: account.to_owned(),
            id: ConnectionId::parse(id)?,
        })
    }

    /// The first connection ARN quoted in a text ("Unable to use Connection: arn:aws:…. The …").
    pub fn find_in(text: &str) -> Option<Self> {
        text.split(|c: char| c.is_whitespace() || c == ',' || c == '"')
            .map(|word| word.trim_end_matches('.'))
            .find_map(|word| Self::parse(word).ok())
    }

    /// Builds the ARN of a connection from its parts.
    pub fn new(prefix: ArnPrefix, region: &str, account: &str, id: ConnectionId) -> Self {
        Self { partition: "aws".to_owned(), prefix, region: region.to_owned(), account: account.to_owned(), id }
    }

    /// The connection id, the stable identity of the connection.
    pub fn id(&self) -> &ConnectionId {
        &self.id
    }
    /// The namespace this ARN was written in.
    pub fn prefix(&self) -> ArnPrefix {
        self.prefix
    }
    /// The region of the connection.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The account that owns the connection.
    pub fn account(&self) -> &str {
        &self.account
    }
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(&self) -> &str {
        &self.partition
    }
}

impl fmt::Display for ConnectionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:connection/{}",
            self.partition,
            self.prefix.as_str(),
            self.region,
            self.account,
            self.id
        )
    }
}

impl FromStr for ConnectionArn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ConnectionArn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ConnectionArn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Declares a string enum that keeps values it does not know instead of failing, because AWS
/// adds statuses and providers without notice and a monitor must not break when it does.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version of connwatch does not know, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// The value as AWS spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Unknown(raw) => raw,
                }
            }

            /// Parses a value; unknown values are kept in [`Self::Unknown`].
            pub fn parse(raw: &str) -> Self {
                match raw {
                    $($text => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&String::deserialize(deserializer)?))
            }
        }
    };
}

open_enum! {
    /// The status of a connection as `ListConnections`/`GetConnection` report it.
    ConnectionStatus {
        /// Created but the OAuth handshake was never completed; pipelines are not triggered.
        Pending => "PENDING",
        /// Usable.
        Available => "AVAILABLE",
        /// Broken: app uninstalled, token revoked, permissions changed.
        Error => "ERROR",
    }
}

open_enum! {
    /// The git provider behind a connection.
    ProviderType {
        /// Bitbucket Cloud.
        Bitbucket => "Bitbucket",
        /// GitHub.com.
        GitHub => "GitHub",
        /// GitHub Enterprise Server.
        GitHubEnterpriseServer => "GitHubEnterpriseServer",
        /// GitLab.com.
        GitLab => "GitLab",
        /// GitLab self-managed.
        GitLabSelfManaged => "GitLabSelfManaged",
        /// Azure DevOps.
        AzureDevOps => "AzureDevOps",
    }
}

/// One connection as listed by the connections API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The ARN, in whichever namespace the listing API used.
    pub arn: ConnectionArn,
    /// The connection name (unique per account and region).
    pub name: String,
    /// The provider.
    pub provider: ProviderType,
    /// The current status.
    pub status: ConnectionStatus,
    /// The provider-side owner (Bitbucket workspace, GitHub org or user), when known.
    pub owner_account_id: Option<String>,
    /// The host ARN for self-managed providers.
    pub host_arn: Option<String>,
}

impl Connection {
    /// The connection id.
    pub fn id(&self) -> &ConnectionId {
        self.arn.id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "0f5b706a-1a1d-46c5-86b6-f177321bcfb2";

    #[test]
    fn both_prefixes_parse_to_the_same_id() {
        let old = ConnectionArn::parse(&format!("arn:aws:codestar-connections:eu-west-1:123456789012:connection/{ID}"))
            .unwrap();
        let new =
            ConnectionArn::parse(&format!("arn:aws:codeconnections:eu-west-1:123456789012:connection/{ID}")).unwrap();
        assert_eq!(old.id(), new.id());
        assert_eq!(old.prefix(), ArnPrefix::CodestarConnections);
        assert_eq!(new.prefix(), ArnPrefix::Codeconnections);
        assert_eq!(old.account(), "123456789012");
        assert_eq!(old.region(), "eu-west-1");
    }

    #[test]
    fn upper_case_ids_are_normalised() {
        let arn = ConnectionArn::parse(&format!(
            "arn:aws:codeconnections:us-east-1:123456789012:connection/{}",
            ID.to_uppercase()
        ))
        .unwrap();
        assert_eq!(arn.id().as_str(), ID);
    }

    #[test]
    fn garbage_gets_a_typed_error() {
        let cases = [
            ("", ArnError::NotAnArn),
            ("arn:aws:codeconnections", ArnError::NotAnArn),
            ("arn:aws:s3:eu-west-1:123456789012:connection/x", ArnError::WrongService("s3".to_owned())),
            ("arn:aws:codeconnections:eu-west-1:12345:connection/x", ArnError::BadAccount("12345".to_owned())),
            ("arn:aws:codeconnections:EU WEST:123456789012:connection/x", ArnError::BadRegion("EU WEST".to_owned())),
            (
                "arn:aws:codeconnections:eu-west-1:123456789012:host/abc",
                ArnError::NotAConnection("host/abc".to_owned()),
            ),
            (
                "arn:aws:codeconnections:eu-west-1:123456789012:connection/not-a-uuid",
                ArnError::BadId("not-a-uuid".to_owned()),
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(ConnectionArn::parse(raw), Err(expected), "{raw}");
        }
    }

    #[test]
    fn arns_are_found_in_error_texts() {
        let text = format!(
            "Unable to use Connection: arn:aws:codeconnections:eu-west-1:123456789012:connection/{ID}. The role…"
        );
        assert_eq!(ConnectionArn::find_in(&text).unwrap().id().as_str(), ID);
        assert_eq!(ConnectionArn::find_in("no arn here"), None);
    }

    #[test]
    fn unknown_status_and_provider_are_kept() {
        let status: ConnectionStatus = serde_json::from_str("\"SUSPENDED\"").unwrap();
        assert_eq!(status, ConnectionStatus::Unknown("SUSPENDED".to_owned()));
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"SUSPENDED\"");
        let provider: ProviderType = serde_json::from_str("\"Bitbucket\"").unwrap();
        assert_eq!(provider, ProviderType::Bitbucket);
        assert_eq!(ProviderType::parse("Gitea"), ProviderType::Unknown("Gitea".to_owned()));
    }

    fn uuid_strategy() -> impl Strategy<Value = String> {
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).hyphenated().to_string())
    }

    proptest! {
        #[test]
        fn valid_arns_round_trip(
            id in uuid_strategy(),
            new_prefix in any::<bool>(),
            region in "[a-z]{2}-[a-z]{4,9}-[1-9]",
            account in "[0-9]{12}",
        ) {
            let prefix = if new_prefix { "codeconnections" } else { "codestar-connections" };
            let raw = format!("arn:aws:{prefix}:{region}:{account}:connection/{id}");
            let arn = ConnectionArn::parse(&raw).unwrap();
            prop_assert_eq!(arn.to_string(), raw);
            prop_assert_eq!(arn.id().as_str(), id.as_str());
        }

        #[test]
        fn arbitrary_strings_never_panic(raw in ".{0,200}") {
            let _ = ConnectionArn::parse(&raw);
        }

        #[test]
        fn arn_like_strings_never_panic(
            service in "[a-z-]{0,25}",
            region in "[^:]{0,15}",
            account in "[^:]{0,15}",
            resource in ".{0,60}",
        ) {
            let _ = ConnectionArn::parse(&format!("arn:aws:{service}:{region}:{account}:{resource}"));
        }
    }
}
