//! Creating a company and its first admin, and the checks every write shares:
//! e-mail addresses, E.164 numbers, and bumping the company's version.

use crate::auth::hash_password;
use crate::db::{Db, Query};
use crate::error::{ApiError, FieldProblem};
use earshot_policy::{CompanyId, CompanySettings, Role, UserId, UserSettings};
use sqlx::Row as _;

/// What `earshotd init` and the demo create.
#[derive(Clone, Debug)]
pub struct NewCompany {
    /// The company's name.
    pub name: String,
    /// The first admin's e-mail address.
    pub admin_email: String,
    /// The first admin's password.
    pub admin_password: String,
    /// The first admin's display name.
    pub admin_name: String,
}

/// Creates a company with default settings (SPEC §3) and its first admin.
pub async fn create_company(db: &Db, new: &NewCompany) -> Result<(CompanyId, UserId), ApiError> {
    let name = new.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid_field("company", "must not be empty"));
    }
    let email = normalize_email(&new.admin_email)?;
    check_password(&new.admin_password)?;
    let hash = hash_password(&new.admin_password)?;
    let now = crate::now_millis();
    let mut tx = db.pool().begin().await?;
    let mut query = Query::new("INSERT INTO companies (name, settings, version, created_at) VALUES (");
    query
        .bind(name)
        .push(", ")
        .bind(serde_json::to_string(&CompanySettings::default()).map_err(|e| ApiError::internal(&e))?)
        .push(", 1, ")
        .bind(now)
        .push(") RETURNING id");
    let company = CompanyId(db.insert_returning_id(&mut *tx, &query).await?);
    let mut query = Query::new(
        "INSERT INTO users (company_id, name, email, role, extension, settings, password_hash, created_at) VALUES (",
    );
    query
        .bind(company.0)
        .push(", ")
        .bind(new.admin_name.trim())
        .push(", ")
        .bind(email)
        .push(", ")
        .bind(Role::Admin.as_str())
        .push(", NULL, ")
        .bind(serde_json::to_string(&UserSettings::default()).map_err(|e| ApiError::internal(&e))?)
        .push(", ")
        .bind(hash)
        .push(", ")
        .bind(now)
        .push(") RETURNING id");
    let admin = UserId(db.insert_returning_id(&mut *tx, &query).await?);
    tx.commit().await?;
    Ok((company, admin))
}

/// Bumps the company's version inside `tx` and returns the new version.
pub async fn bump_version(
    db: &Db,
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    company: CompanyId,
) -> Result<i64, ApiError> {
    let mut query = Query::new("UPDATE companies SET version = version + 1 WHERE id = ");
    query.bind(company.0).push(" RETURNING version");
    let row = db.fetch_optional(&mut **tx, &query).await?.ok_or_else(|| ApiError::not_found("company"))?;
    Ok(row.try_get("version")?)
}

/// A trimmed, lower-case e-mail address, or a 422.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !email.contains(char::is_whitespace);
    if valid { Ok(email) } else { Err(ApiError::invalid_field("email", "is not an e-mail address")) }
}

/// Passwords: at least 8 characters, at most 1,024 (argon2 hashes any length, but bounds keep it cheap).
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if length < 8 {
        Err(ApiError::invalid_field("password", "must have at least 8 characters"))
    } else if length > 1_024 {
        Err(ApiError::invalid_field("password", "must have at most 1,024 characters"))
    } else {
        Ok(())
    }
}

/// A number in E.164 form: `+`, then 2 to 15 digits, the first not 0.
pub fn check_e164(field: &str, number: &str) -> Result<(), FieldProblem> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let valid = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(())
    } else {
        Err(FieldProblem {
            field: field.to_owned(),
            problem: format!("{number:?} is not an E.164 number (like +442071234567)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for good in ["+442071234567", "+15550100", "+49"] {
            assert!(check_e164("n", good).is_ok(), "{good}");
        }
        for bad in ["442071234567", "+0441234", "+44 20 7123", "+1", "+1234567890123456", "", "+44a"] {
            assert!(check_e164("n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Ana@Example.COM ").unwrap(), "ana@example.com");
        for bad in ["ana", "ana@", "@example.com", "ana@example", "a b@example.com", "ana@.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
