//! Creating a company and its first admin, and the checks every write shares:
//! e-mail addresses, E.164 numbers, and bumping the company's version.

use crate::auth::hash_password;
use crate::db::{Db, Query};
use crate::error::{ApiError, FieldProblem};
use earshot_api::rules;
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
    let name = check_name("company", &new.name, rules::MAX_NAME)
        .map_err(|p| ApiError::invalid_field(&p.field, p.problem))?;
    let email = normalize_email(new.admin_email.trim())?;
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
        .bind(rules::trim_name(&new.admin_name))
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

/// A pattern of `earshot_api::rules`, compiled once. Rust's `regex` reads
/// those patterns as JSON Schema validators do, so a value passes here
/// exactly when it fits the OpenAPI document.
macro_rules! rule {
    ($pattern:expr) => {{
        static RULE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new($pattern).expect("the rules' patterns compile"));
        &*RULE
    }};
}

/// A lower-case e-mail address (`rules::EMAIL`), or a 422.
pub fn normalize_email(email: &str) -> Result<String, ApiError> {
    let valid = email.chars().count() <= rules::MAX_EMAIL && rule!(rules::EMAIL).is_match(email);
    if valid {
        Ok(email.to_lowercase())
    } else {
        Err(ApiError::invalid_field("email", "is not an e-mail address"))
    }
}

/// Passwords: 8 to 1,024 characters (argon2 hashes any length, but bounds keep it cheap).
pub fn check_password(password: &str) -> Result<(), ApiError> {
    check_password_field("password", password).map_err(|p| ApiError::invalid_field(&p.field, p.problem))
}

/// A password (log-in or SIP) of `field`: 8 to 1,024 characters.
pub fn check_password_field(field: &str, password: &str) -> Result<(), FieldProblem> {
    let length = password.chars().count();
    let problem = if length < rules::MIN_PASSWORD {
        format!("must have at least {} characters", rules::MIN_PASSWORD)
    } else if length > rules::MAX_PASSWORD {
        "must have at most 1,024 characters".to_owned()
    } else {
        return Ok(());
    };
    Err(FieldProblem { field: field.to_owned(), problem })
}

/// A number in E.164 form (`rules::E164`): `+`, then 2 to 15 digits, the first not 0.
pub fn check_e164(field: &str, number: &str) -> Result<(), FieldProblem> {
    if rule!(rules::E164).is_match(number) {
        Ok(())
    } else {
        Err(FieldProblem {
            field: field.to_owned(),
            problem: format!("{number:?} is not an E.164 number (like +442071234567)"),
        })
    }
}

/// An extension (`rules::EXTENSION`): 2 to 8 digits.
pub fn check_extension(field: &str, extension: &str) -> Result<(), FieldProblem> {
    if rule!(rules::EXTENSION).is_match(extension) {
        Ok(())
    } else {
        Err(FieldProblem { field: field.to_owned(), problem: "must be 2 to 8 digits".into() })
    }
}

/// A name (`rules::NAME`) of at most `max` characters, trimmed of blanks.
pub fn check_name(field: &str, name: &str, max: usize) -> Result<String, FieldProblem> {
    let problem = if !rule!(rules::NAME).is_match(name) {
        "must not be empty".to_owned()
    } else if name.chars().count() > max {
        format!("must have at most {max} characters")
    } else {
        return Ok(rules::trim_name(name).to_owned());
    };
    Err(FieldProblem { field: field.to_owned(), problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers() {
        for good in ["+442071234567", "+15550100", "+49"] {
            assert!(check_e164("n", good).is_ok(), "{good}");
        }
        for bad in [
            "442071234567",
            "+0441234",
            "+44 20 7123",
            "+1",
            "+1234567890123456",
            "",
            "+44a",
            "+44\n",
            "+４4",
        ] {
            assert!(check_e164("n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_extensions() {
        assert_eq!(check_name("name", "  Support line\t", 200).unwrap(), "Support line");
        assert_eq!(check_name("name", "\u{3000}", 200).unwrap(), "\u{3000}");
        for blank in ["", " ", "\t\n\r", "\u{7f}"] {
            assert!(check_name("name", blank, 200).is_err(), "{blank:?}");
        }
        assert!(check_name("name", &"é".repeat(200), 200).is_ok());
        assert!(check_name("name", &"é".repeat(201), 200).is_err());
        for good in ["10", "12345678"] {
            assert!(check_extension("extension", good).is_ok(), "{good}");
        }
        for bad in ["1", "123456789", "1a", "１２", "12\n"] {
            assert!(check_extension("extension", bad).is_err(), "{bad}");
        }
        assert!(check_password_field("password", "1234567").is_err());
        assert!(check_password_field("password", "ééééééé8").is_ok());
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email("Ana@Example.COM").unwrap(), "ana@example.com");
        assert!(normalize_email("a.b+c@mail.example.co.uk").is_ok());
        let long = format!("{}@example.com", "a".repeat(rules::MAX_EMAIL - 12));
        assert!(normalize_email(&long).is_ok() && normalize_email(&format!("a{long}")).is_err());
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "ana@.com",
            "ana@example.",
            "a@b@example.com",
            " ana@example.com",
            "ana@example.com\n",
            "ana\u{7f}@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
