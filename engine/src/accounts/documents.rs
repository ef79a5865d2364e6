//! Documents a person uploads to prove who they are or where they live (the
//! identity API's `documents` and `addresses`). The files are kept in the
//! data directory (`documents/<account id>/`, readable by the server's user
//! only) and served to nobody but their owner; each is a PDF, PNG or JPEG
//! by its first bytes (whatever it claims), at most 5 MiB, at most five an
//! upload and fifty an account. Everything is checked before anything is
//! written: a refused upload leaves nothing behind.

use std::path::{Path, PathBuf};

use sqlx::Row;

use super::{Accounts, User};
use crate::{now_ms, Error, Result};

pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_FILES: usize = 5;
pub const MAX_DOCUMENTS: i64 = 50;
/// The kinds of documents taken (as the spec lists them, in snake case).
pub const DOC_TYPES: [&str; 7] = [
    "passport",
    "driver_license",
    "utility_bill",
    "identity_card",
    "institutional",
    "address",
    "residental",
];

/// What a person says of an upload.
#[derive(Debug, Clone, Default)]
pub struct DocumentInput {
    pub doc_type: String,
    pub doc_number: String,
    pub doc_expire: Option<String>,
    pub doc_category: Option<String>,
    pub identificator: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: String,
    pub doc_type: String,
    pub doc_number: String,
    pub doc_expire: Option<String>,
    pub doc_category: Option<String>,
    pub identificator: Option<String>,
    /// A JSON object.
    pub metadata: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at_ms: i64,
}

/// A file's type by its first bytes, and the name ending it is kept under.
fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    if bytes.starts_with(b"%PDF-") {
        Some(("application/pdf", "pdf"))
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some(("image/jpeg", "jpg"))
    } else {
        None
    }
}

/// A kind of document as people write it ("Driver license", "utility_bill").
fn parse_doc_type(text: &str) -> Result<String> {
    let key = text.trim().to_lowercase().replace([' ', '-'], "_");
    DOC_TYPES
        .iter()
        .find(|t| **t == key)
        .map(|t| t.to_string())
        .ok_or_else(|| {
            Error::invalid(
                "doc_type",
                format!("doc_type is one of {}", DOC_TYPES.join(", ")),
            )
        })
}

/// An optional short text field: at most 64 characters of letters, digits,
/// spaces, `-`, `_` and `/`.
fn check_short(field: &'static str, text: &str, required: bool) -> Result<String> {
    let text = text.trim();
    let good = text.chars().count() <= 64
        && (!required || !text.is_empty())
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '/'));
    match good {
        true => Ok(text.to_string()),
        false => Err(Error::invalid(
            field,
            format!(
                "{field} is {}at most 64 letters, digits, spaces, -, _ or /",
                if required { "1 to 64 characters: " } else { "" }
            ),
        )),
    }
}

impl DocumentInput {
    /// A proof of address: a document of type `address`, the address (each
    /// part as a profile's free text) in its metadata.
    pub fn proof_of_address(
        country: &str,
        address: &str,
        city: &str,
        postcode: &str,
    ) -> Result<DocumentInput> {
        use super::profiles::check_text;
        let metadata = serde_json::json!({
            "country": check_text("country", country, 100)?,
            "address": check_text("address", address, 255)?,
            "city": check_text("city", city, 100)?,
            "postcode": check_text("postcode", postcode, 20)?,
        });
        Ok(DocumentInput {
            doc_type: "address".into(),
            metadata: Some(metadata.to_string()),
            ..Default::default()
        })
    }

    /// The input checked and written as kept.
    fn checked(&self) -> Result<DocumentInput> {
        let doc_type = parse_doc_type(&self.doc_type)?;
        let doc_number = check_short("doc_number", &self.doc_number, doc_type != "address")?;
        let doc_expire = match self
            .doc_expire
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            Some(date) => {
                crate::wallet::day_start_ms(date)
                    .filter(|&ms| ms > now_ms())
                    .ok_or_else(|| {
                        Error::invalid("doc_expire", "doc_expire is a date to come, YYYY-MM-DD")
                    })?;
                Some(date.to_string())
            }
            None => None,
        };
        let optional = |field, value: &Option<String>| -> Result<Option<String>> {
            value
                .as_deref()
                .map(|v| check_short(field, v, false))
                .transpose()
                .map(|v| v.filter(|v| !v.is_empty()))
        };
        Ok(DocumentInput {
            doc_category: optional("doc_category", &self.doc_category)?,
            identificator: optional("identificator", &self.identificator)?,
            metadata: Some(super::user_data::parse_json_object(
                "metadata",
                self.metadata.as_deref().unwrap_or_default(),
            )?),
            doc_type,
            doc_number,
            doc_expire,
        })
    }
}

fn read_document(row: &sqlx::any::AnyRow) -> Result<Document> {
    Ok(Document {
        id: row.try_get("id")?,
        doc_type: row.try_get("doc_type")?,
        doc_number: row.try_get("doc_number")?,
        doc_expire: row.try_get("doc_expire")?,
        doc_category: row.try_get("doc_category")?,
        identificator: row.try_get("identificator")?,
        metadata: row.try_get("metadata")?,
        content_type: row.try_get("content_type")?,
        size_bytes: row.try_get("size_bytes")?,
        created_at_ms: row.try_get("created_at")?,
    })
}

const DOCUMENT_COLUMNS: &str = "id, doc_type, doc_number, doc_expire, doc_category, \
     identificator, metadata, content_type, size_bytes, created_at";

impl Accounts {
    fn documents_dir(&self) -> Result<&Path> {
        self.policy
            .documents
            .as_deref()
            .ok_or_else(|| Error::Unavailable("document uploads are off on this server".into()))
    }

    /// Keeps an upload of one to five files as documents of one kind.
    pub async fn add_documents(
        &self,
        user: &User,
        input: &DocumentInput,
        files: Vec<Vec<u8>>,
    ) -> Result<Vec<Document>> {
        let folder = self.documents_dir()?.join(&user.id.0);
        let input = input.checked()?;
        if files.is_empty() || files.len() > MAX_FILES {
            return Err(Error::invalid(
                "upload",
                format!("upload 1 to {MAX_FILES} files"),
            ));
        }
        let mut kept = Vec::new();
        for bytes in &files {
            if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
                return Err(Error::invalid("upload", "each file is at most 5 MiB"));
            }
            let (content_type, ending) = sniff(bytes)
                .ok_or_else(|| Error::invalid("upload", "each file is a PDF, PNG or JPEG"))?;
            kept.push((content_type, ending));
        }
        let now = now_ms();
        let documents: Vec<(Document, String)> = kept
            .iter()
            .zip(&files)
            .map(|((content_type, ending), bytes)| {
                let id = uuid::Uuid::new_v4().to_string();
                let stored = format!("{id}.{ending}");
                let document = Document {
                    id,
                    doc_type: input.doc_type.clone(),
                    doc_number: input.doc_number.clone(),
                    doc_expire: input.doc_expire.clone(),
                    doc_category: input.doc_category.clone(),
                    identificator: input.identificator.clone(),
                    metadata: input.metadata.clone().unwrap_or_else(|| "{}".into()),
                    content_type: content_type.to_string(),
                    size_bytes: bytes.len() as i64,
                    created_at_ms: now,
                };
                (document, stored)
            })
            .collect();
        write_files(&folder, &documents, files).await?;
        let (user_id, rows) = (user.id.0.clone(), documents.clone());
        let saved = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM documents WHERE user_id = $1")
                            .bind(&user_id)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("n")?;
                    if held + rows.len() as i64 > MAX_DOCUMENTS {
                        return Err(Error::TooMany(format!(
                            "an account keeps at most {MAX_DOCUMENTS} documents"
                        )));
                    }
                    for (d, stored) in &rows {
                        sqlx::query(
                            "INSERT INTO documents (id, user_id, doc_type, doc_number, doc_expire, \
                             doc_category, identificator, metadata, stored_name, content_type, \
                             size_bytes, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                        )
                        .bind(&d.id)
                        .bind(&user_id)
                        .bind(&d.doc_type)
                        .bind(&d.doc_number)
                        .bind(&d.doc_expire)
                        .bind(&d.doc_category)
                        .bind(&d.identificator)
                        .bind(&d.metadata)
                        .bind(stored)
                        .bind(&d.content_type)
                        .bind(d.size_bytes)
                        .bind(d.created_at_ms)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await;
        if let Err(err) = saved {
            // Nothing was recorded: the files go too.
            for (_, stored) in &documents {
                let _ = tokio::fs::remove_file(folder.join(stored)).await;
            }
            return Err(err);
        }
        Ok(documents.into_iter().map(|(d, _)| d).collect())
    }

    /// The account's documents, oldest first.
    pub async fn documents(&self, user: &User) -> Result<Vec<Document>> {
        let rows = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM documents WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(read_document).collect()
    }

    /// One of the account's documents and its file's bytes (404 for any
    /// other: another account's is not told apart from none).
    pub async fn document_file(&self, user: &User, id: &str) -> Result<(Document, Vec<u8>)> {
        let missing = || Error::NotFound("the account has no such document".into());
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS}, stored_name FROM documents WHERE id = $1 AND user_id = $2"
        ))
        .bind(id)
        .bind(&user.id.0)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(missing)?;
        let document = read_document(&row)?;
        let stored: String = row.try_get("stored_name")?;
        let path = self.documents_dir()?.join(&user.id.0).join(stored);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::Internal(format!("document file: {e}")))?;
        Ok((document, bytes))
    }
}

/// Writes each file new (never over another), the folder and files readable
/// by the server's user only; on a failure, removes what it wrote.
async fn write_files(
    folder: &Path,
    documents: &[(Document, String)],
    files: Vec<Vec<u8>>,
) -> Result<()> {
    let folder: PathBuf = folder.to_path_buf();
    let names: Vec<String> = documents.iter().map(|(_, s)| s.clone()).collect();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let mut dir = std::fs::DirBuilder::new();
        dir.recursive(true);
        #[cfg(unix)]
        dir.mode(0o700);
        dir.create(&folder)?;
        let mut written = Vec::new();
        for (name, bytes) in names.iter().zip(files) {
            let path = folder.join(name);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            options.mode(0o600);
            let result = options.open(&path).and_then(|mut file| {
                file.write_all(&bytes)?;
                file.sync_all()
            });
            if let Err(err) = result {
                for path in written.iter().chain([&path]) {
                    let _ = std::fs::remove_file(path);
                }
                return Err(err);
            }
            written.push(path);
        }
        Ok(())
    })
    .await
    .map_err(|e| Error::Internal(format!("documents: {e}")))?
    .map_err(|e| Error::Internal(format!("documents: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_their_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7 ...").map(|s| s.0), Some("application/pdf"));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n....").map(|s| s.0),
            Some("image/png")
        );
        assert_eq!(sniff(b"\xff\xd8\xff\xe0").map(|s| s.0), Some("image/jpeg"));
        assert_eq!(sniff(b"<html><script>"), None);
        assert_eq!(sniff(b"GIF89a"), None);
    }

    #[test]
    fn kinds_of_documents_read_as_people_write_them() {
        assert_eq!(parse_doc_type("Driver license").unwrap(), "driver_license");
        assert_eq!(parse_doc_type(" Passport ").unwrap(), "passport");
        assert!(parse_doc_type("selfie").is_err());
    }
}
