//! Result sets on the wire: RowDescription fields from an Arrow schema, and a
//! stream of DataRow messages encoded batch by batch (so memory stays bounded
//! by one batch whatever the result size).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use bytes::BytesMut;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::error::to_pgwire;
use crate::error::{Result, TarnError};
use crate::types::PgType;
use crate::types::encode::{EncodeOptions, Format, encode_column};

/// A result column as the wire describes it and the encoder writes it.
#[derive(Debug, Clone)]
pub struct ResultColumn {
    pub ty: PgType,
    pub format: Format,
}

/// RowDescription fields and encoder settings for `schema`, with the
/// per-column formats the client asked for.
pub fn describe_columns(schema: &Schema, formats: &[Format]) -> (Vec<FieldInfo>, Vec<ResultColumn>) {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ty = PgType::from_field(f);
            let format = formats.get(i).copied().unwrap_or(Format::Text);
            let info = FieldInfo::new(
                f.name().clone(),
                None,
                None,
                ty.wire_type(),
                if format == Format::Binary { FieldFormat::Binary } else { FieldFormat::Text },
            )
            .with_type_modifier(ty.typmod())
            .with_type_size(ty.type_size());
            (info, ResultColumn { ty, format })
        })
        .unzip()
}

/// Result formats from Bind's format codes: none means all text, one applies
/// to every column, otherwise one per column (anything else is a protocol
/// violation, reported rather than indexed past).
pub fn result_formats(codes: &pgwire::api::portal::Format, columns: usize) -> Result<Vec<Format>> {
    use pgwire::api::portal::Format as F;
    let from = |c: i16| if c == 1 { Format::Binary } else { Format::Text };
    Ok(match codes {
        F::UnifiedText => vec![Format::Text; columns],
        F::UnifiedBinary => vec![Format::Binary; columns],
        F::Individual(v) if v.len() == columns => v.iter().map(|c| from(*c)).collect(),
        F::Individual(v) => {
            return Err(TarnError::new(
                crate::error::sqlstate::PROTOCOL_VIOLATION,
                format!("bind message has {} result formats but query has {columns} columns", v.len()),
            ));
        }
    })
}

/// Encode one batch as DataRow messages.
pub fn encode_batch(batch: &RecordBatch, columns: &[ResultColumn], opts: &EncodeOptions) -> Result<Vec<DataRow>> {
    let encoded = batch
        .columns()
        .iter()
        .zip(columns)
        .map(|(a, c)| encode_column(a, &c.ty, c.format, opts))
        .collect::<Result<Vec<_>>>()?;
    let field_count = columns.len() as i16;
    Ok((0..batch.num_rows())
        .map(|row| {
            let len: usize = encoded.iter().map(|c| c.cell(row).len()).sum();
            let mut data = BytesMut::with_capacity(len);
            for c in &encoded {
                data.extend_from_slice(c.cell(row));
            }
            DataRow::new(data, field_count)
        })
        .collect())
}

/// Stream DataRows from a stream of batches; an execution error ends the
/// stream with an ErrorResponse after the rows already sent.
pub fn row_stream(
    batches: SendableRecordBatchStream,
    columns: Vec<ResultColumn>,
    opts: EncodeOptions,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let columns = Arc::new(columns);
    batches.flat_map(move |batch| {
        let rows: Vec<PgWireResult<DataRow>> = match batch
            .map_err(TarnError::from)
            .and_then(|b| encode_batch(&b, &columns, &opts))
        {
            Ok(rows) => rows.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(to_pgwire(e))],
        };
        futures::stream::iter(rows)
    })
}
