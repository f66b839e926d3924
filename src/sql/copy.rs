//! `COPY` statements: what to copy, which way, and the format options,
//! checked the way PostgreSQL checks them. Running them is
//! `engine::copy`'s job.

use datafusion::sql::sqlparser::ast::{self, CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget};

use super::{normalize_ident, qualified_name};
use crate::error::{Result, TarnError, sqlstate};
use crate::types::copy::{CopyFormat, CopyOptions};

/// A parsed `COPY`.
#[derive(Debug, Clone)]
pub enum Copy {
    /// `COPY table [(columns)] FROM STDIN`.
    From { schema: String, table: String, columns: Vec<String>, options: CopyOptions },
    /// `COPY table [(columns)] TO STDOUT` or `COPY (query) TO STDOUT`.
    To { source: CopyToSource, options: CopyOptions },
}

#[derive(Debug, Clone)]
pub enum CopyToSource {
    Table { schema: String, table: String, columns: Vec<String> },
    Query(Box<ast::Query>),
}

pub fn copy(source: CopySource, to: bool, target: CopyTarget, options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<Copy> {
    match (&target, to) {
        (CopyTarget::Stdin, false) | (CopyTarget::Stdout, true) => {}
        (CopyTarget::File { .. } | CopyTarget::Program { .. }, _) => {
            return Err(TarnError::not_supported(
                "COPY to or from a file or program on the server is not supported; use COPY … FROM STDIN / TO STDOUT (psql's \\copy)",
            ));
        }
        _ => return Err(TarnError::syntax(format!("COPY {} {target} is not valid", if to { "TO" } else { "FROM" }))),
    }
    let options = copy_options(options, legacy)?;
    let columns = |cols: &[ast::Ident]| cols.iter().map(normalize_ident).collect::<Vec<_>>();
    match source {
        CopySource::Table { table_name, columns: cols } => {
            let (schema, table) = qualified_name(&table_name)?;
            let columns = columns(&cols);
            if to {
                Ok(Copy::To { source: CopyToSource::Table { schema, table, columns }, options })
            } else {
                Ok(Copy::From { schema, table, columns, options })
            }
        }
        CopySource::Query(q) if to => Ok(Copy::To { source: CopyToSource::Query(q), options }),
        CopySource::Query(_) => Err(TarnError::syntax("COPY FROM needs a table, not a query")),
    }
}

fn copy_options(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    // The format decides the defaults, so find it first.
    let mut format = CopyFormat::Text;
    for o in options {
        if let CopyOption::Format(f) = o {
            format = match f.value.to_lowercase().as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => CopyFormat::Binary,
                other => return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("COPY format \"{other}\" not recognized"))),
            };
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(_) => format = CopyFormat::Csv,
            CopyLegacyOption::Binary => format = CopyFormat::Binary,
            _ => {}
        }
    }
    let mut opts = CopyOptions::new(format);
    let (mut quote_set, mut escape_set) = (false, false);
    let one_byte = |c: char, what: &str| -> Result<u8> {
        if c.is_ascii() {
            Ok(c as u8)
        } else {
            Err(TarnError::not_supported(format!("COPY {what} must be a single one-byte character")))
        }
    };
    for o in options {
        match o {
            CopyOption::Format(_) => {}
            CopyOption::Delimiter(c) => opts.delimiter = one_byte(*c, "delimiter")?,
            CopyOption::Null(n) => opts.null = n.clone(),
            CopyOption::Header(h) => opts.header = *h,
            CopyOption::Quote(c) => (opts.quote, quote_set) = (one_byte(*c, "quote")?, true),
            CopyOption::Escape(c) => (opts.escape, escape_set) = (one_byte(*c, "escape")?, true),
            CopyOption::Encoding(e) if matches!(e.to_lowercase().replace(['-', '_'], "").as_str(), "utf8" | "unicode") => {}
            CopyOption::Encoding(e) => return Err(TarnError::not_supported(format!("COPY encoding \"{e}\" is not supported: Tarn speaks UTF8"))),
            CopyOption::Freeze(_) => {}
            other => return Err(TarnError::not_supported(format!("COPY option {other} is not supported yet"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => opts.header = true,
                        CopyLegacyCsvOption::Quote(q) => (opts.quote, quote_set) = (one_byte(*q, "quote")?, true),
                        CopyLegacyCsvOption::Escape(e) => (opts.escape, escape_set) = (one_byte(*e, "escape")?, true),
                        other => return Err(TarnError::not_supported(format!("COPY option {other} is not supported yet"))),
                    }
                }
            }
            CopyLegacyOption::Binary => {}
            CopyLegacyOption::Delimiter(c) => opts.delimiter = one_byte(*c, "delimiter")?,
            CopyLegacyOption::Null(n) => opts.null = n.clone(),
            CopyLegacyOption::Header => opts.header = true,
            other => return Err(TarnError::not_supported(format!("COPY option {other} is not supported"))),
        }
    }
    if format == CopyFormat::Binary {
        let defaults = CopyOptions::new(CopyFormat::Binary);
        for (set, what) in [(opts.delimiter != defaults.delimiter, "DELIMITER"), (opts.null != defaults.null, "NULL"), (opts.header, "HEADER")] {
            if set {
                return Err(TarnError::syntax(format!("cannot specify {what} in BINARY mode")));
            }
        }
    }
    if format != CopyFormat::Csv {
        if quote_set {
            return Err(TarnError::not_supported("COPY quote available only in CSV mode"));
        }
        if escape_set {
            return Err(TarnError::not_supported("COPY escape available only in CSV mode"));
        }
    } else if !escape_set {
        opts.escape = opts.quote;
    }
    if opts.delimiter == b'\n' || opts.delimiter == b'\r' {
        return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, "COPY delimiter cannot be newline or carriage return"));
    }
    if format == CopyFormat::Text && (b"\\.abcdefghijklmnopqrstuvwxyz0123456789".contains(&opts.delimiter)) {
        return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, format!("COPY delimiter cannot be \"{}\"", opts.delimiter as char)));
    }
    if format == CopyFormat::Csv && opts.delimiter == opts.quote {
        return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, "COPY delimiter and quote must be different"));
    }
    if opts.null.as_bytes().contains(&opts.delimiter) {
        return Err(TarnError::new(sqlstate::INVALID_PARAMETER_VALUE, "COPY delimiter must not appear in the NULL specification"));
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Copy> {
        match crate::sql::parse(sql)?.remove(0) {
            ast::Statement::Copy { source, to, target, options, legacy_options, .. } => copy(source, to, target, &options, &legacy_options),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn options_follow_postgres_defaults() {
        let Copy::From { table, columns, options, .. } = parse("COPY t (a, \"B\") FROM STDIN").unwrap() else { panic!() };
        assert_eq!((table.as_str(), columns), ("t", vec!["a".to_string(), "B".to_string()]));
        assert_eq!(options, CopyOptions::new(CopyFormat::Text));
        let Copy::From { options, .. } = parse("COPY t FROM STDIN WITH (FORMAT csv, HEADER, DELIMITER ';', QUOTE '''')").unwrap() else { panic!() };
        assert_eq!((options.delimiter, options.quote, options.escape, options.header, options.null.as_str()), (b';', b'\'', b'\'', true, ""));
        let Copy::From { options, .. } = parse("COPY t FROM STDIN CSV HEADER").unwrap() else { panic!() };
        assert!(options.header && options.format == CopyFormat::Csv);
        assert!(matches!(parse("COPY (SELECT 1) TO STDOUT").unwrap(), Copy::To { source: CopyToSource::Query(_), .. }));
    }

    #[test]
    fn bad_options_get_postgres_errors() {
        let code = |sql: &str| parse(sql).unwrap_err().code;
        assert_eq!(code("COPY t FROM STDIN WITH (FORMAT xml)"), sqlstate::INVALID_PARAMETER_VALUE);
        assert_eq!(code("COPY t FROM STDIN WITH (QUOTE '\"')"), sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("COPY t FROM '/etc/passwd'"), sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("COPY t FROM STDIN WITH (FORMAT csv, DELIMITER '\"')"), sqlstate::INVALID_PARAMETER_VALUE);
        assert_eq!(code("COPY t FROM STDIN WITH (FORMAT binary, DELIMITER ',')"), sqlstate::SYNTAX_ERROR);
        assert!(parse("COPY t FROM STDIN WITH (FORMAT binary)").is_ok());
    }
}
