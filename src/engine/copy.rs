//! Running `COPY`.
//!
//! `COPY t FROM STDIN`: [`CopyIn`] takes the data as it arrives, reads rows
//! with `types::copy::RowReader`, gathers each column's text for a batch of
//! rows, converts the batch to the table's types with Arrow's vectorised
//! casts (a value that does not convert is reported with PostgreSQL's
//! message, its line and column), fills omitted columns with their DEFAULT
//! or identity, and stages the rows in the statement's transaction. So a
//! COPY is one atomic write: the rows commit together when the data ends
//! (autocommit) or with the block, and nothing is kept if any row fails.
//! Outside a block, a COPY into a Lance table without a primary key is a
//! bulk load instead (`storage::bulk`): the converted batches stream into
//! Lance data files, committed as one Lance version when the data ends.
//!
//! In the binary format (`types::copy_binary`) each field is decoded with
//! the binary parameter codecs instead, value by value.
//!
//! `COPY … TO STDOUT`: the table or query runs like a SELECT; each row
//! becomes one text or CSV line, or one binary tuple (the file header goes
//! with the first).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, StringBuilder, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use datafusion::sql::sqlparser::ast::Statement;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::execute::{self, Output};
use crate::error::{Result, TarnError, sqlstate};
use crate::session::Session;
use crate::sql::Command;
use crate::sql::copy::{Copy, CopyToSource};
use crate::storage::bulk::{BulkLoad, bulk_loadable};
use crate::storage::table::Table;
use crate::storage::Storage;
use crate::storage::txn::TxnStatus;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use crate::types::PgType;
use crate::types::copy::{CopyFormat, CopyOptions, Fields, RowReader, write_csv_field, write_text_field};
use crate::types::copy_binary::{self, BinaryFields, BinaryRowReader};
use crate::types::decode::{decode_param, decode_text};
use datafusion::scalar::ScalarValue;
use crate::types::encode::{Format, encode_column};

/// Rows converted and staged at a time.
const BATCH_ROWS: usize = 8192;

type DefaultFn = Box<dyn Fn(usize) -> Result<ArrayRef> + Send + Sync>;

/// A `COPY … FROM STDIN` in progress.
pub struct CopyIn {
    converter: Arc<Converter>,
    reader: Reader,
    /// The text of each COPY field for the rows gathered so far (text, CSV).
    text: Vec<StringBuilder>,
    /// The decoded value of each COPY field for the rows gathered so far (binary).
    values: Vec<Vec<ScalarValue>>,
    /// The line each gathered row started on.
    lines: Vec<u64>,
    rows: u64,
    sink: Sink,
}

/// Turns gathered COPY fields into table rows: shared with the bulk load's
/// conversion task.
struct Converter {
    table: Arc<Table>,
    /// Per table column: its position among the COPY's fields, or None
    /// (filled by its DEFAULT, identity or NULL).
    field_of: Vec<Option<usize>>,
    /// Per table column not copied: its DEFAULT.
    defaults: Vec<Option<DefaultFn>>,
    field_names: Vec<String>,
    /// Each field's type (binary fields are decoded as it).
    field_types: Vec<PgType>,
}

/// One batch of gathered fields, per COPY field.
enum Gathered {
    Text(Vec<StringArray>),
    Values(Vec<Vec<ScalarValue>>),
}

/// Where converted rows go.
enum Sink {
    /// Staged in the session's transaction (committed with it).
    Txn,
    /// Outside a transaction block, a COPY into a Lance table without a
    /// primary key is a bulk load (`storage::bulk`). Batches are converted
    /// on a task of their own, so parsing the next batch and converting and
    /// encoding this one use both cores.
    Bulk { sender: Option<mpsc::Sender<(Gathered, Vec<u64>)>>, task: Option<JoinHandle<Result<BulkLoad>>> },
}

/// Gathered batches queued for conversion.
const QUEUED_BATCHES: usize = 4;

/// The row parser of the COPY's format.
enum Reader {
    Text(RowReader, Fields),
    Binary(BinaryRowReader, BinaryFields),
}

impl Reader {
    fn line(&self) -> u64 {
        match self {
            Reader::Text(r, _) => r.line(),
            Reader::Binary(r, _) => r.line(),
        }
    }
}

/// Start `COPY … FROM STDIN`; the session keeps the returned state until the
/// data ends.
pub fn start_copy_in(session: &Session, schema: &str, table_name: &str, columns: &[String], options: CopyOptions) -> Result<CopyIn> {
    let storage = &session.engine().storage;
    let table = storage.table(schema, table_name).ok_or_else(|| TarnError::undefined_table(table_name))?;
    let def = &table.def;
    let field_names: Vec<String> = if columns.is_empty() { def.columns.iter().map(|c| c.name.clone()).collect() } else { columns.to_vec() };
    let mut field_of = vec![None; def.columns.len()];
    for (f, name) in field_names.iter().enumerate() {
        let Some(i) = def.columns.iter().position(|c| &c.name == name) else {
            return Err(TarnError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" of relation \"{table_name}\" does not exist"),
            ));
        };
        if field_of[i].is_some() {
            return Err(TarnError::new(sqlstate::DUPLICATE_COLUMN, format!("column \"{name}\" specified more than once")));
        }
        field_of[i] = Some(f);
    }
    let defaults = def
        .columns
        .iter()
        .zip(&field_of)
        .map(|(c, f)| match (&c.default, f) {
            (Some(sql), None) => {
                let evaluate = crate::storage::alter::default_evaluator(sql, &c.pg_type())?;
                Ok(Some(Box::new(evaluate) as DefaultFn))
            }
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>>>()?;
    let text = field_names.iter().map(|_| StringBuilder::new()).collect();
    let field_types = field_names
        .iter()
        .map(|n| def.columns.iter().find(|c| &c.name == n).map(|c| c.pg_type()).expect("checked above"))
        .collect();
    let reader = match options.format {
        CopyFormat::Binary => Reader::Binary(BinaryRowReader::new(), BinaryFields::default()),
        _ => Reader::Text(RowReader::new(options), Fields::default()),
    };
    let values = field_names.iter().map(|_| Vec::new()).collect();
    let bulk = session.transaction_status() == TxnStatus::Idle && bulk_loadable(&table);
    let converter = Arc::new(Converter { table, field_of, defaults, field_names, field_types });
    let sink = if bulk { start_bulk(storage.clone(), converter.clone()) } else { Sink::Txn };
    Ok(CopyIn { converter, reader, text, values, lines: Vec::with_capacity(BATCH_ROWS), rows: 0, sink })
}

/// The bulk load's conversion task: converts each gathered batch and hands
/// the rows to the Lance writer; returns the load for the commit.
fn start_bulk(storage: Arc<Storage>, converter: Arc<Converter>) -> Sink {
    let (sender, mut receiver) = mpsc::channel::<(Gathered, Vec<u64>)>(QUEUED_BATCHES);
    let task = tokio::spawn(async move {
        let mut bulk = storage.start_bulk_load(converter.table.clone());
        while let Some((gathered, lines)) = receiver.recv().await {
            let rows = converter.rows(gathered, &lines)?;
            bulk.push(&storage, rows).await?;
        }
        Ok(bulk)
    });
    Sink::Bulk { sender: Some(sender), task: Some(task) }
}

impl CopyIn {
    /// The number of fields each row must have.
    pub fn width(&self) -> usize {
        self.converter.field_names.len()
    }

    pub fn is_binary(&self) -> bool {
        matches!(self.reader, Reader::Binary(..))
    }

    /// Take one CopyData payload; full batches are staged in the session's
    /// transaction.
    pub async fn push(&mut self, session: &Session, data: &[u8]) -> Result<()> {
        match &mut self.reader {
            Reader::Text(r, _) => r.push(data),
            Reader::Binary(r, _) => r.push(data),
        }
        self.read_rows(session, false).await
    }

    /// The data ended (CopyDone): stage the rest. Returns the rows copied.
    pub async fn finish(&mut self, session: &Session) -> Result<u64> {
        self.read_rows(session, true).await?;
        self.stage(session).await?;
        if let Sink::Bulk { sender, task } = &mut self.sink {
            sender.take();
            let mut bulk = Self::bulk_result(task).await?;
            bulk.finish(&session.engine().storage).await?;
        }
        Ok(self.rows)
    }

    /// What the conversion task ended with (an error stops it early).
    async fn bulk_result(task: &mut Option<JoinHandle<Result<BulkLoad>>>) -> Result<BulkLoad> {
        let task = task.take().ok_or_else(|| TarnError::internal("COPY conversion task already finished"))?;
        task.await.map_err(|e| TarnError::internal(format!("COPY conversion task failed: {e}")))?
    }

    async fn read_rows(&mut self, session: &Session, at_end: bool) -> Result<()> {
        loop {
            let more = match &mut self.reader {
                Reader::Text(r, f) => r.next_row(f, at_end),
                Reader::Binary(r, f) => r.next_row(f, at_end),
            };
            if !more.map_err(|e| self.in_context(e))? {
                return Ok(());
            }
            match &self.reader {
                Reader::Text(..) => self.gather_row()?,
                Reader::Binary(..) => self.gather_binary_row()?,
            }
            if self.lines.len() >= BATCH_ROWS {
                self.stage(session).await?;
            }
        }
    }

    /// Append the current row's fields to the column text builders.
    fn gather_row(&mut self) -> Result<()> {
        let Reader::Text(_, fields) = &self.reader else { return Err(TarnError::internal("COPY reader is not text")) };
        let width = self.width();
        if fields.len() != width {
            let message = if fields.len() > width {
                "extra data after last expected column".to_string()
            } else {
                format!("missing data for column \"{}\"", self.converter.field_names[fields.len()])
            };
            return Err(self.in_context(TarnError::new(sqlstate::BAD_COPY_FILE_FORMAT, message)));
        }
        for (i, builder) in self.text.iter_mut().enumerate() {
            builder.append_option(fields.get(i));
        }
        self.lines.push(self.reader.line());
        Ok(())
    }

    /// Decode the current binary tuple's fields (each in its column's binary form).
    fn gather_binary_row(&mut self) -> Result<()> {
        let Reader::Binary(_, fields) = &self.reader else { return Err(TarnError::internal("COPY reader is not binary")) };
        if fields.len() != self.width() {
            let e = TarnError::new(sqlstate::BAD_COPY_FILE_FORMAT, format!("row field count is {}, expected {}", fields.len(), self.width()));
            return Err(self.in_context(e));
        }
        let c = &self.converter;
        let mut row = Vec::with_capacity(fields.len());
        for (i, ty) in c.field_types.iter().enumerate() {
            let value = decode_param(fields.get(i), &ty.wire_type(), Format::Binary)
                .and_then(|v| if v.data_type() == ty.arrow_type() { Ok(v) } else { Ok(v.cast_to(&ty.arrow_type())?) })
                .map_err(|e| e.with_context(format!("COPY {}, line {}, column {}", c.table.def.name, self.reader.line(), c.field_names[i])))?;
            row.push(value);
        }
        for (values, v) in self.values.iter_mut().zip(row) {
            values.push(v);
        }
        self.lines.push(self.reader.line());
        Ok(())
    }

    /// Hand the gathered rows on: converted and staged in the transaction,
    /// or queued for the bulk load's conversion task.
    async fn stage(&mut self, session: &Session) -> Result<()> {
        let n = self.lines.len();
        if n == 0 {
            return Ok(());
        }
        let gathered = if self.is_binary() {
            Gathered::Values(self.values.iter_mut().map(std::mem::take).collect())
        } else {
            Gathered::Text(self.text.iter_mut().map(|b| b.finish()).collect())
        };
        let lines = std::mem::replace(&mut self.lines, Vec::with_capacity(BATCH_ROWS));
        match &mut self.sink {
            Sink::Txn => {
                let rows = self.converter.rows(gathered, &lines)?;
                session.engine().storage.stage_inserts(&self.converter.table, session.txn(), rows).await?;
            }
            Sink::Bulk { sender, task } => {
                let queued = match sender {
                    Some(s) => s.send((gathered, lines)).await.is_ok(),
                    None => false,
                };
                if !queued {
                    // The conversion task stopped: its error says why.
                    sender.take();
                    return Err(match Self::bulk_result(task).await {
                        Err(e) => e,
                        Ok(_) => TarnError::internal("COPY conversion task stopped early"),
                    });
                }
            }
        }
        self.rows += n as u64;
        Ok(())
    }

    /// `e` as raised while reading the current line.
    fn in_context(&self, e: TarnError) -> TarnError {
        e.with_context(format!("COPY {}, line {}", self.converter.table.def.name, self.reader.line().max(1)))
    }
}

impl Converter {
    /// Gathered fields (their rows started on `lines`) as the table's rows:
    /// converted to the column types, omitted columns filled, constraints
    /// checked, row ids assigned.
    fn rows(&self, gathered: Gathered, lines: &[u64]) -> Result<Vec<RecordBatch>> {
        let n = lines.len();
        let mut fields = self.field_arrays(gathered, lines)?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.field_of.len());
        for (i, column) in self.table.def.columns.iter().enumerate() {
            let ty = column.pg_type();
            columns.push(match (self.field_of[i], &self.defaults[i]) {
                (Some(f), _) => std::mem::replace(&mut fields[f], new_null_array(&ty.arrow_type(), 0)),
                (None, Some(default)) => default(n)?,
                (None, None) => new_null_array(&ty.arrow_type(), n),
            });
        }
        let batch = RecordBatch::try_new(self.table.schema.clone(), columns)?;
        let first_line = lines.first().copied().unwrap_or(1);
        self.table
            .prepare_insert(vec![batch], true)
            .map_err(|e| e.with_context(format!("COPY {}, somewhere from line {first_line}", self.table.def.name)))
    }

    /// The gathered rows of each COPY field, as its column's type.
    fn field_arrays(&self, gathered: Gathered, lines: &[u64]) -> Result<Vec<ArrayRef>> {
        match gathered {
            Gathered::Values(values) => values
                .into_iter()
                .zip(&self.field_types)
                .map(|(values, ty)| Ok(if values.is_empty() { new_null_array(&ty.arrow_type(), 0) } else { ScalarValue::iter_to_array(values)? }))
                .collect(),
            Gathered::Text(text) => {
                text.iter().zip(&self.field_types).enumerate().map(|(f, (t, ty))| self.convert(t, ty, f, lines)).collect()
            }
        }
    }

    /// One COPY field's text as the column's type. Text stays text; other
    /// types go through one Arrow cast, and a value it cannot convert is
    /// parsed alone for PostgreSQL's error.
    fn convert(&self, text: &StringArray, ty: &PgType, field: usize, lines: &[u64]) -> Result<ArrayRef> {
        if let PgType::Numeric(_) = ty {
            // Plain decimal notation, nearly all COPY data, skips the general
            // parse (which also takes NaN and exponents).
            if let Some(decimals) = crate::types::decimal_text::plain_decimal_column(text, &ty.arrow_type()) {
                return Ok(decimals);
            }
        }
        match ty {
            // Checked (uuid, json) or normalised (jsonb) with the row constraints.
            ty if ty.is_text_backed() => return Ok(Arc::new(text.clone())),
            ty if crate::types::decode::parsed_from_text_by_tarn(ty) => {
                // No Arrow cast parses these as PostgreSQL does: value by value.
                return crate::types::decode::text_column(text, ty).map_err(|(row, e)| self.at(e, lines, row, field, text.value(row)));
            }
            _ => {}
        }
        let converted = cast_with_options(text, &ty.arrow_type(), &CastOptions { safe: true, ..Default::default() })?;
        if converted.null_count() != text.null_count() {
            for row in 0..text.len() {
                if text.is_valid(row) && converted.is_null(row) {
                    let value = text.value(row);
                    let e = match decode_text(value, ty) {
                        Err(e) => e,
                        Ok(_) => TarnError::new(
                            sqlstate::INVALID_TEXT_REPRESENTATION,
                            format!("invalid input syntax for type {}: \"{value}\"", ty.name()),
                        ),
                    };
                    return Err(self.at(e, lines, row, field, value));
                }
            }
        }
        Ok(converted)
    }

    /// `e` as raised by row `row` (of the batch whose rows started on
    /// `lines`) in COPY field `field`.
    fn at(&self, e: TarnError, lines: &[u64], row: usize, field: usize, value: &str) -> TarnError {
        let line = lines.get(row).copied().unwrap_or(0);
        e.with_context(format!("COPY {}, line {line}, column {}: \"{value}\"", self.table.def.name, self.field_names[field]))
    }
}

/// Run `COPY`: FROM leaves a [`CopyIn`] with the session and asks for data;
/// TO streams the rows.
pub async fn run(session: &Session, copy: Copy) -> Result<Output> {
    match copy {
        Copy::From { schema, table, columns, options } => {
            let copy_in = start_copy_in(session, &schema, &table, &columns, options)?;
            let (columns, binary) = (copy_in.width(), copy_in.is_binary());
            session.begin_copy_in(copy_in);
            Ok(Output::CopyIn { columns, binary })
        }
        Copy::To { source, options } => copy_out(session, source, options).await,
    }
}

async fn copy_out(session: &Session, source: CopyToSource, options: CopyOptions) -> Result<Output> {
    let query = match source {
        CopyToSource::Query(q) => *q,
        CopyToSource::Table { schema, table, columns } => {
            if session.engine().storage.table(&schema, &table).is_none() {
                return Err(TarnError::undefined_table(&table));
            }
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let list = if columns.is_empty() { "*".to_string() } else { columns.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ") };
            let sql = format!("SELECT {list} FROM {}.{}", quote(&schema), quote(&table));
            match crate::sql::parse(&sql)?.remove(0) {
                Statement::Query(q) => *q,
                _ => return Err(TarnError::internal("COPY TO built a non-query")),
            }
        }
    };
    // Boxed: `execute::run` is what called us.
    let select = Box::pin(execute::run(session, Command::Plan(Box::new(Statement::Query(Box::new(query)))), None));
    let Output::Rows { schema, stream, .. } = select.await?
    else {
        return Err(TarnError::internal("COPY TO's query returned no rows"));
    };
    let types: Vec<PgType> = schema.fields().iter().map(|f| PgType::from_field(f)).collect();
    let encode = session.encode_options();
    let columns = types.len();
    if options.format == CopyFormat::Binary {
        return Ok(Output::CopyOut { columns, binary: true, rows: binary_tuples(stream, types, encode) });
    }
    let header = options.header.then(|| {
        let mut line = vec![];
        let names: Vec<&[u8]> = schema.fields().iter().map(|f| f.name().as_bytes()).collect();
        write_line(&mut line, names.iter().map(|n| Some(*n)), &options);
        line
    });
    let lines = stream.flat_map(move |batch| {
        let lines: Vec<Result<Vec<u8>>> = match batch.map_err(TarnError::from).and_then(|b| encode_lines(&b, &types, &encode, &options)) {
            Ok(lines) => lines.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(lines)
    });
    let rows: BoxStream<'static, Result<Vec<u8>>> = match header {
        Some(h) => Box::pin(futures::stream::iter([Ok(h)]).chain(lines)),
        None => Box::pin(lines),
    };
    Ok(Output::CopyOut { columns, binary: false, rows })
}

/// A query's rows as binary COPY data: the header with the first tuple (or
/// alone, if there are none), one tuple per chunk, then the trailer.
fn binary_tuples(stream: datafusion::physical_plan::SendableRecordBatchStream, types: Vec<PgType>, encode: crate::types::encode::EncodeOptions) -> BoxStream<'static, Result<Vec<u8>>> {
    let mut header = Some(copy_binary::header());
    let tuples = stream.flat_map(move |batch| {
        let out: Vec<Result<Vec<u8>>> = match batch.map_err(TarnError::from).and_then(|b| {
            let encoded = b.columns().iter().zip(&types).map(|(a, ty)| encode_column(a, ty, Format::Binary, &encode)).collect::<Result<Vec<_>>>()?;
            Ok((0..b.num_rows())
                .map(|row| {
                    let mut tuple = header.take().unwrap_or_default();
                    copy_binary::write_tuple(&mut tuple, encoded.iter().map(|c| c.cell(row)));
                    tuple
                })
                .collect::<Vec<_>>())
        }) {
            Ok(tuples) => tuples.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(out)
    });
    // The header goes out alone when no tuple took it.
    let tuples = Box::pin(tuples);
    let ending = futures::stream::once(async { Ok(copy_binary::TRAILER.to_vec()) });
    Box::pin(HeaderIfEmpty { inner: tuples, sent_any: false, done: false }.chain(ending))
}

/// Prepends the binary header when the stream ends without a tuple.
struct HeaderIfEmpty {
    inner: BoxStream<'static, Result<Vec<u8>>>,
    sent_any: bool,
    done: bool,
}

impl futures::Stream for HeaderIfEmpty {
    type Item = Result<Vec<u8>>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.sent_any = true;
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.done = true;
                if self.sent_any { Poll::Ready(None) } else { Poll::Ready(Some(Ok(copy_binary::header()))) }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// One line per row of `batch`.
fn encode_lines(batch: &RecordBatch, types: &[PgType], encode: &crate::types::encode::EncodeOptions, options: &CopyOptions) -> Result<Vec<Vec<u8>>> {
    let encoded = batch
        .columns()
        .iter()
        .zip(types)
        .map(|(a, ty)| encode_column(a, ty, Format::Text, encode))
        .collect::<Result<Vec<_>>>()?;
    Ok((0..batch.num_rows())
        .map(|row| {
            let mut line = Vec::with_capacity(64);
            // Cells are framed as on the wire: a 4-byte length, -1 for NULL.
            let cells = encoded.iter().map(|c| {
                let cell = c.cell(row);
                if cell[..4] == (-1i32).to_be_bytes() { None } else { Some(&cell[4..]) }
            });
            write_line(&mut line, cells, options);
            line
        })
        .collect())
}

fn write_line<'a>(line: &mut Vec<u8>, cells: impl Iterator<Item = Option<&'a [u8]>>, options: &CopyOptions) {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.push(options.delimiter);
        }
        match (cell, options.format) {
            (None, _) => line.extend_from_slice(options.null.as_bytes()),
            (Some(v), CopyFormat::Csv) => write_csv_field(line, v, options),
            (Some(v), _) => write_text_field(line, v, options.delimiter),
        }
    }
    line.push(b'\n');
}
