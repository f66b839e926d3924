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
///
/// The rows share one buffer per batch (each DataRow is a `split_to` view of
/// it): a malloc and free per row were a tenth of a streaming `SELECT *`.
/// A single column's framed cells already are the rows, so that buffer is
/// taken as it is (a unique `Bytes` becomes a `BytesMut` without a copy).
pub fn encode_batch(batch: &RecordBatch, columns: &[ResultColumn], opts: &EncodeOptions) -> Result<Vec<DataRow>> {
    let mut encoded = batch
        .columns()
        .iter()
        .zip(columns)
        .map(|(a, c)| encode_column(a, &c.ty, c.format, opts))
        .collect::<Result<Vec<_>>>()?;
    let field_count = columns.len() as i16;
    let rows = batch.num_rows();
    // Where each row ends in the batch buffer: the sum of its columns' ends.
    let ends: Vec<usize> = (0..rows).map(|r| encoded.iter().map(|c| c.ends[r]).sum()).collect();
    let mut all = if let [only] = encoded.as_mut_slice() {
        BytesMut::from(bytes::Bytes::from(std::mem::take(&mut only.buf)))
    } else {
        let mut all = BytesMut::with_capacity(ends.last().copied().unwrap_or(0));
        for row in 0..rows {
            for c in &encoded {
                all.extend_from_slice(c.cell(row));
            }
        }
        all
    };
    let mut start = 0;
    Ok(ends
        .into_iter()
        .map(|end| {
            let data = all.split_to(end - start);
            start = end;
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use arrow::datatypes::{DataType, Field};

    fn cell(bytes: Option<&[u8]>) -> Vec<u8> {
        match bytes {
            None => (-1i32).to_be_bytes().to_vec(),
            Some(b) => [(b.len() as i32).to_be_bytes().as_slice(), b].concat(),
        }
    }

    #[test]
    fn each_row_holds_its_own_cells() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, true), Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![Some(7), None, Some(-12)])),
                Arc::new(StringArray::from(vec![Some("a"), Some(""), None])),
            ],
        )
        .unwrap();
        let (_, columns) = describe_columns(&schema, &[Format::Binary, Format::Text]);
        let rows = encode_batch(&batch, &columns, &EncodeOptions::default()).unwrap();
        let expected = [
            [cell(Some(&7i32.to_be_bytes())), cell(Some(b"a"))].concat(),
            [cell(None), cell(Some(b""))].concat(),
            [cell(Some(&(-12i32).to_be_bytes())), cell(None)].concat(),
        ];
        assert_eq!(rows.len(), 3);
        for (row, want) in rows.iter().zip(expected) {
            assert_eq!(row.field_count, 2);
            assert_eq!(row.data.as_ref(), want.as_slice());
        }
        // One column: its buffer is split as it is.
        let (_, one) = describe_columns(&schema.project(&[0]).unwrap(), &[Format::Text]);
        let rows = encode_batch(&batch.project(&[0]).unwrap(), &one, &EncodeOptions::default()).unwrap();
        let texts: Vec<&[u8]> = rows.iter().map(|r| r.data.as_ref()).collect();
        assert_eq!(texts, [cell(Some(b"7")).as_slice(), cell(None).as_slice(), cell(Some(b"-12")).as_slice()]);
    }
}
