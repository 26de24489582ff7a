//! A small CSV encoder feeding `COPY ... FROM STDIN`, flushed in ~1 MiB chunks so
//! that millions of rows stream without being held in memory.

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

const FLUSH_BYTES: usize = 1 << 20;

pub struct CsvCopy {
    table: &'static str,
    columns: &'static [&'static str],
    buf: Vec<u8>,
    rows: u64,
}

/// Encodes one row's fields.
pub struct Row<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl Row<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self
    }

    pub fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self
    }

    /// Always quoted, so that an empty string stays distinct from NULL.
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        for &b in v.as_bytes() {
            if b == b'"' {
                self.buf.push(b'"');
            }
            self.buf.push(b);
        }
        self.buf.push(b'"');
        self
    }

    pub fn opt_text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn date(&mut self, v: NaiveDate) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(v.format("%Y-%m-%d").to_string().as_bytes());
        self
    }

    pub fn opt_date(&mut self, v: Option<NaiveDate>) -> &mut Self {
        match v {
            Some(v) => self.date(v),
            None => self.null(),
        }
    }

    /// A UTC timestamp.
    pub fn ts(&mut self, v: NaiveDateTime) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(v.format("%Y-%m-%d %H:%M:%S+00").to_string().as_bytes());
        self
    }
}

impl CsvCopy {
    pub fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            table,
            columns,
            buf: Vec::with_capacity(FLUSH_BYTES + 4096),
            rows: 0,
        }
    }

    pub fn row(&mut self, fill: impl FnOnce(&mut Row<'_>)) {
        let mut row = Row {
            buf: &mut self.buf,
            first: true,
        };
        fill(&mut row);
        self.buf.push(b'\n');
        self.rows += 1;
    }

    fn statement(&self) -> String {
        format!(
            "COPY {} ({}) FROM STDIN (FORMAT csv)",
            self.table,
            self.columns.join(", ")
        )
    }

    /// Opens the COPY for a table streamed with `send_if_full`.
    pub async fn open<'c>(
        &self,
        conn: &'c mut PgConnection,
    ) -> Result<PgCopyIn<&'c mut PgConnection>, sqlx::Error> {
        conn.copy_in_raw(&self.statement()).await
    }

    pub async fn send_if_full(
        &mut self,
        sink: &mut PgCopyIn<&mut PgConnection>,
    ) -> Result<(), sqlx::Error> {
        if self.buf.len() >= FLUSH_BYTES {
            sink.send(std::mem::take(&mut self.buf)).await?;
            self.buf.reserve(FLUSH_BYTES + 4096);
        }
        Ok(())
    }

    /// Sends the rest of a streamed COPY and ends it; returns the rows written.
    pub async fn finish_stream(
        mut self,
        mut sink: PgCopyIn<&mut PgConnection>,
    ) -> Result<u64, sqlx::Error> {
        if !self.buf.is_empty() {
            sink.send(std::mem::take(&mut self.buf)).await?;
        }
        sink.finish().await
    }

    /// Copies everything buffered in one COPY; returns the rows written.
    pub async fn finish(mut self, conn: &mut PgConnection) -> Result<u64, sqlx::Error> {
        if self.rows == 0 {
            return Ok(0);
        }
        let mut copy = conn.copy_in_raw(&self.statement()).await?;
        copy.send(std::mem::take(&mut self.buf)).await?;
        copy.finish().await
    }
}
