//! How an identity provider is configured: its issuer, the audience of the
//! access tokens it issues for Certscope, the OAuth client for browser sign-in,
//! and how its claims map onto a Certscope scope.

use std::collections::BTreeMap;

use certscope_domain::Role;
use serde::Deserialize;

/// One trusted OpenID Connect provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A short name for logs, `/readyz` and the sign-in page.
    pub name: String,
    /// The issuer URL exactly as its tokens' `iss` says; discovery is read from
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The `aud` access tokens must carry (the API's identifier at the provider).
    pub audience: String,
    /// Browser sign-in: the OAuth client registered for Certscope.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Shortest time between two JWKS fetches caused by tokens with an unknown
    /// `kid` (a stream of made-up key ids cannot make us hammer the provider).
    #[serde(default = "default_refetch_secs")]
    pub min_refetch_secs: u64,
}

fn default_refetch_secs() -> u64 {
    30
}

/// Which claims say who the caller is to Certscope.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    /// The claim holding the organization's slug...
    pub organization_claim: String,
    /// ...or the one organization every token of this provider belongs to.
    pub organization: Option<String>,
    /// The claim naming the user: an email address known to Certscope.
    pub user_claim: String,
    /// A claim holding the role (`officer`, `executive`, `auditor`, `admin`)...
    pub role_claim: String,
    /// ...or a claim listing groups, mapped to roles below (the most
    /// privileged match wins).
    pub groups_claim: Option<String>,
    pub groups: BTreeMap<String, Role>,
    /// For auditors: the claim listing the certification ids it may see; without
    /// it, its assignments in Certscope.
    pub certifications_claim: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            organization_claim: "org".into(),
            organization: None,
            user_claim: "email".into(),
            role_claim: "certscope_role".into(),
            groups_claim: None,
            groups: BTreeMap::new(),
            certifications_claim: "certscope_certifications".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the OpenID Connect providers are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("failed to read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("provider {name:?}: {why}")]
    Invalid { name: String, why: String },
}

/// Providers from `--oidc-providers`: a JSON array inline, or a file holding one.
pub fn parse(source: &str) -> Result<Vec<ProviderConfig>, ConfigError> {
    let text = if source.trim_start().starts_with('[') {
        source.to_owned()
    } else {
        std::fs::read_to_string(source).map_err(|e| ConfigError::Read {
            path: source.to_owned(),
            source: e,
        })?
    };
    let providers: Vec<ProviderConfig> = serde_json::from_str(&text)?;
    for p in &providers {
        let invalid = |why: &str| ConfigError::Invalid {
            name: p.name.clone(),
            why: why.to_owned(),
        };
        if !(p.issuer.starts_with("https://")
            || p.issuer.starts_with("http://127.0.0.1")
            || p.issuer.starts_with("http://localhost"))
        {
            return Err(invalid("the issuer must be an https URL"));
        }
        if p.audience.trim().is_empty() {
            return Err(invalid("an audience is required"));
        }
        if p.claims.groups_claim.is_some() && p.claims.groups.is_empty() {
            return Err(invalid(
                "`groups_claim` needs `groups` mapping groups to roles",
            ));
        }
    }
    let mut issuers: Vec<&str> = providers.iter().map(|p| p.issuer.as_str()).collect();
    issuers.sort_unstable();
    if issuers.windows(2).any(|w| w[0] == w[1]) {
        return Err(ConfigError::Invalid {
            name: "*".into(),
            why: "two providers share an issuer".into(),
        });
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_with_group_mapping_parses_and_bad_ones_say_why() {
        let ok = parse(
            r#"[{"name": "acme", "issuer": "https://id.acme.example", "audience": "certscope",
                 "claims": {"groups_claim": "groups", "groups": {"grc": "officer", "execs": "executive"},
                            "organization": "acme"}}]"#,
        )
        .unwrap();
        assert_eq!(ok[0].claims.groups["grc"], Role::Officer);
        assert_eq!(ok[0].claims.user_claim, "email");
        let err = parse(r#"[{"name": "x", "issuer": "http://evil.example", "audience": "a"}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("https"), "{err}");
        let err = parse(r#"[{"name": "x", "issuer": "https://a", "audience": "a", "colour": 1}]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
