//! Output in the three formats every command offers: an aligned table for people, CSV and JSON
//! for tools. One `Table` value renders to all three, so commands never format by hand.

use std::io::Write;

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Rows under named columns.
pub struct Table {
    pub title: Option<String>,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Table {
        Table {
            title: None,
            headers,
            rows: Vec::new(),
        }
    }

    pub fn titled(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Rows as JSON objects keyed by column name.
    pub fn to_json(&self) -> serde_json::Value {
        let rows = self.rows.iter().map(|row| {
            let object = self
                .headers
                .iter()
                .zip(row)
                .map(|(h, v)| ((*h).to_owned(), serde_json::Value::String(v.clone())));
            serde_json::Value::Object(object.collect())
        });
        serde_json::Value::Array(rows.collect())
    }

    pub fn write(&self, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
        match format {
            Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&self.to_json())?)?,
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&self.headers)?;
                for row in &self.rows {
                    w.write_record(row)?;
                }
                w.flush()?;
            }
            Format::Table => self.write_aligned(out)?,
        }
        Ok(())
    }

    fn write_aligned(&self, out: &mut impl Write) -> anyhow::Result<()> {
        if let Some(title) = &self.title {
            writeln!(out, "{title}")?;
        }
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| -> String {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        writeln!(out, "{}", line(self.headers.clone()))?;
        writeln!(
            out,
            "{}",
            line(
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect()
            )
        )?;
        for row in &self.rows {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
        }
        Ok(())
    }
}

/// Micro-units as a decimal with six places (display only; arithmetic stays in integers).
pub fn micros(value: i64) -> String {
    ringledger_domain::Money::from_micros(value, ringledger_domain::Currency::USD).amount_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(vec!["a", "amount"]);
        t.push(vec!["x, y".into(), micros(13_500)]);
        t
    }

    #[test]
    fn renders_every_format() {
        let mut out = Vec::new();
        sample().write(Format::Table, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a     amount\n----  --------\nx, y  0.013500\n"
        );
        let mut out = Vec::new();
        sample().write(Format::Csv, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,amount\n\"x, y\",0.013500\n");
        assert_eq!(sample().to_json()[0]["amount"], "0.013500");
    }
}
