//! A verified provider token's claims into a Certscope [`Scope`]: which
//! organization, which user, which role, and for auditors which
//! certifications. Each refusal says which claim was missing or wrong.

use std::collections::BTreeSet;

use certscope_domain::Role;
use serde_json::Value;
use sqlx::PgPool;

use super::config::ClaimMapping;
use crate::auth::Scope;
use crate::error::ApiError;

fn refuse(why: String) -> ApiError {
    ApiError::Forbidden(format!(
        "the identity provider's token cannot be used: {why}"
    ))
}

fn text<'a>(claims: &'a Value, name: &str) -> Option<&'a str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The role the claims give: the role claim, else the most privileged role
/// any listed group maps to.
fn role(claims: &Value, m: &ClaimMapping) -> Result<Role, ApiError> {
    if let Some(r) = text(claims, &m.role_claim) {
        return Role::parse(r).ok_or_else(|| {
            refuse(format!(
                "claim `{}` says {r:?}, which is not a role (officer, executive, auditor, admin)",
                m.role_claim
            ))
        });
    }
    if let Some(groups_claim) = &m.groups_claim {
        let groups: Vec<&str> = match claims.get(groups_claim) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => s.split([',', ' ']).filter(|g| !g.is_empty()).collect(),
            _ => Vec::new(),
        };
        // admin > officer > executive > auditor
        let rank = |r: &Role| match r {
            Role::Admin => 3,
            Role::Officer => 2,
            Role::Executive => 1,
            Role::Auditor => 0,
        };
        if let Some(best) = groups
            .iter()
            .filter_map(|g| m.groups.get(*g))
            .max_by_key(|r| rank(r))
        {
            return Ok(*best);
        }
        return Err(refuse(format!(
            "no role: claim `{}` is missing and no group in `{groups_claim}` maps to a role",
            m.role_claim
        )));
    }
    Err(refuse(format!(
        "no role: claim `{}` is missing",
        m.role_claim
    )))
}

/// The certification ids a claim lists (numbers or numeric strings).
fn certification_ids(claims: &Value, name: &str) -> Option<Result<Vec<i64>, ApiError>> {
    let v = claims.get(name)?;
    let list = match v {
        Value::Array(a) => a.clone(),
        Value::String(s) => s
            .split(',')
            .map(|p| Value::String(p.trim().into()))
            .collect(),
        other => vec![other.clone()],
    };
    Some(
        list.iter()
            .map(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .map(|id| {
                id.filter(|id| *id > 0)
                    .ok_or_else(|| refuse(format!("claim `{name}` must list certification ids")))
            })
            .collect(),
    )
}

/// Maps verified `claims` to a scope, reading the organization, the user and an
/// auditor's certifications from PostgreSQL.
pub async fn scope(claims: &Value, m: &ClaimMapping, pool: &PgPool) -> Result<Scope, ApiError> {
    let slug = match &m.organization {
        Some(fixed) => fixed.as_str(),
        None => text(claims, &m.organization_claim).ok_or_else(|| {
            refuse(format!(
                "no organization: claim `{}` is missing",
                m.organization_claim
            ))
        })?,
    };
    let org = certscope_store::organizations::id_by_slug(pool, slug)
        .await?
        .ok_or_else(|| refuse(format!("organization {slug:?} is not known to Certscope")))?;
    let who = text(claims, &m.user_claim)
        .ok_or_else(|| refuse(format!("no user: claim `{}` is missing", m.user_claim)))?;
    let role = role(claims, m)?;
    let user: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM users WHERE organization_id = $1 AND lower(email) = lower($2)",
    )
    .bind(org)
    .bind(who)
    .fetch_optional(pool)
    .await?;
    let user = user.ok_or_else(|| {
        refuse(format!(
            "claim `{}` names no user of organization {slug:?}",
            m.user_claim
        ))
    })?;
    let certifications = if role == Role::Auditor {
        let ids: Vec<i64> = match certification_ids(claims, &m.certifications_claim) {
            Some(listed) => {
                let listed = listed?;
                sqlx::query_scalar(
                    "SELECT id FROM certifications WHERE organization_id = $1 AND id = ANY($2)",
                )
                .bind(org)
                .bind(&listed)
                .fetch_all(pool)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT certification_id FROM auditor_assignments \
                     WHERE organization_id = $1 AND user_id = $2",
                )
                .bind(org)
                .bind(user)
                .fetch_all(pool)
                .await?
            }
        };
        Some(ids.into_iter().collect::<BTreeSet<i64>>())
    } else {
        None
    };
    Ok(Scope {
        user_id: user,
        org_id: org,
        role,
        certifications,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_map_to_the_most_privileged_role_and_missing_ones_say_which_claim() {
        let mut m = ClaimMapping {
            groups_claim: Some("groups".into()),
            ..ClaimMapping::default()
        };
        m.groups.insert("grc".into(), Role::Officer);
        m.groups.insert("board".into(), Role::Executive);
        assert_eq!(
            role(&json!({"groups": ["board", "grc"]}), &m).unwrap(),
            Role::Officer
        );
        let err = role(&json!({"groups": ["sales"]}), &m)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certscope_role") && err.contains("groups"),
            "{err}"
        );
        assert_eq!(
            role(&json!({"certscope_role": "auditor"}), &m).unwrap(),
            Role::Auditor
        );
        assert!(role(&json!({"certscope_role": "king"}), &m).is_err());
    }

    #[test]
    fn certification_claims_take_numbers_or_strings() {
        let ids = certification_ids(&json!({"c": [3, "4"]}), "c")
            .unwrap()
            .unwrap();
        assert_eq!(ids, vec![3, 4]);
        assert!(
            certification_ids(&json!({"c": ["x"]}), "c")
                .unwrap()
                .is_err()
        );
        assert!(certification_ids(&json!({}), "c").is_none());
    }
}
