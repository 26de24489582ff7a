//! Filling a tantivy document: the fields every kind shares, and the helpers the
//! row types compose.

use certscope_domain::deadline::{Dates, Deadline};
use certscope_domain::{Kind, Status};
use chrono::{DateTime, NaiveDate, Utc};
use tantivy::schema::Field;
use tantivy::{DateTime as TvDate, TantivyDocument};

use crate::schema::{Fields, doc_key, normalize_ident, title_sort_key};

fn date(d: NaiveDate) -> TvDate {
    TvDate::from_timestamp_secs(
        d.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()),
    )
}

/// What identifies a control wherever a document embeds one: the catalogue
/// control itself, a requirement in scope of it, the evidence behind that.
pub(super) struct ControlIdentity<'a> {
    pub display_id: &'a str,
    pub control_key: &'a str,
    pub title: &'a str,
    pub family_key: &'a str,
    pub family_title: &'a str,
    pub framework: &'a str,
    pub framework_name: &'a str,
}

impl ControlIdentity<'_> {
    /// Signature of what child documents copy from the control.
    pub fn signature_parts(&self) -> [&str; 7] {
        [
            self.display_id,
            self.control_key,
            self.title,
            self.family_key,
            self.family_title,
            self.framework,
            self.framework_name,
        ]
    }
}

/// Builds documents with the shared fields filled in.
pub(super) struct DocBuilder<'f> {
    pub f: &'f Fields,
    doc: TantivyDocument,
}

impl<'f> DocBuilder<'f> {
    pub fn new(f: &'f Fields, kind: Kind, id: i64, org_id: i64, version: i64, sig: u64) -> Self {
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, doc_key(kind, id));
        doc.add_text(f.kind, kind.as_str());
        doc.add_u64(f.id, id as u64);
        doc.add_u64(f.org_id, org_id as u64);
        doc.add_u64(f.version, version as u64);
        doc.add_u64(f.embed_sig, sig);
        Self { f, doc }
    }

    pub fn text(&mut self, field: Field, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.doc.add_text(field, value);
            if field == self.f.title {
                self.doc.add_text(self.f.title_sort, title_sort_key(value));
                self.doc.add_text(self.f.title_words, value);
            }
        }
        self
    }

    pub fn ident(&mut self, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.doc.add_text(self.f.ident, normalize_ident(value));
        }
        self
    }

    pub fn u64(&mut self, field: Field, value: u64) -> &mut Self {
        self.doc.add_u64(field, value);
        self
    }

    pub fn date(&mut self, field: Field, value: Option<NaiveDate>) -> &mut Self {
        if let Some(d) = value {
            self.doc.add_date(field, date(d));
        }
        self
    }

    pub fn updated_at(&mut self, t: DateTime<Utc>) -> &mut Self {
        self.doc.add_date(
            self.f.updated_at,
            TvDate::from_timestamp_secs(t.timestamp()),
        );
        self
    }

    /// The status, and the deadline it leaves the item with (the domain's rule;
    /// search's `due` facet reads the `deadline` field).
    pub fn status(&mut self, status: impl Into<Status>, dates: Dates) -> &mut Self {
        let status = status.into();
        let f = self.f;
        self.text(f.status, status.as_str());
        let deadline = Deadline::of(status, dates).map(|d| d.date);
        self.date(f.deadline, deadline)
    }

    pub fn owner(&mut self, id: Option<i64>, name: Option<&str>) -> &mut Self {
        if let Some(id) = id {
            self.doc.add_u64(self.f.owner_id, id as u64);
        }
        if let Some(name) = name {
            self.doc.add_text(self.f.owner, name);
            self.doc.add_text(self.f.context, name);
        }
        self
    }

    /// Control identity shared by controls, requirements and evidence.
    pub fn control(&mut self, c: &ControlIdentity<'_>) -> &mut Self {
        let f = self.f;
        self.ident(c.display_id).ident(c.control_key);
        self.doc.add_text(f.control, c.display_id);
        self.doc.add_text(f.control_title, c.title);
        self.doc.add_text(f.family, c.family_key);
        self.doc.add_text(f.family_title, c.family_title);
        self.doc.add_text(f.framework, c.framework);
        self.doc.add_text(f.framework_name, c.framework_name);
        self.doc.add_text(f.context, c.family_title);
        self.doc.add_text(f.context, c.framework_name);
        self
    }

    pub fn finish(self) -> TantivyDocument {
        self.doc
    }
}
