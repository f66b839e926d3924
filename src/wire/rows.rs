//! Result sets on the wire: RowDescription fields from an Arrow schema, and a
//! stream of DataRow messages encoded batch by batch (so memory stays bounded
//! by one batch whatever the result size).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

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
///
/// The first two batches are scanned and encoded on the connection's task.
/// A longer result is produced by a task of its own, up to
/// [`BATCHES_AHEAD`] batches ahead of the socket, on [`producer_runtime`]:
/// pulled inline, the next batch was only scanned and encoded once the
/// previous one had been written, and the client sat idle meanwhile (a
/// streaming `SELECT *` ran at 0.85x of PostgreSQL, the client waiting
/// ~2 ms a few times per batch). A one-row lookup never spawns. Dropping the
/// stream (cancel, timeout, a closed portal) aborts the producer.
pub fn row_stream(
    batches: SendableRecordBatchStream,
    columns: Vec<ResultColumn>,
    opts: EncodeOptions,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    RowStream { source: Source::Inline { batches, encoder: Encoder { columns, opts }, pulled: 0 }, rows: Vec::new().into_iter() }
}

/// Batches pulled on the connection's task: two, so a one-batch result
/// learns its end there and never spawns.
const INLINE_BATCHES: usize = 2;

/// How many encoded batches the producer task may hold for the socket.
const BATCHES_AHEAD: usize = 2;

/// The runtime that result producers run on, apart from the connections'.
///
/// Spawned on the connection's own runtime, a producer landed on the same
/// worker as its connection (tokio's LIFO slot) and held it for the several
/// milliseconds a batch takes to scan and encode, so the socket went unwritten
/// while the producer ran. DataFusion's guidance is the same: CPU-bound plan
/// work on a runtime of its own, network I/O on another. Built on first use,
/// never dropped (a runtime may not be dropped from async code). `None` if
/// its threads could not be started: producers then run on the caller's
/// runtime, slower but never a panic.
fn producer_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
                .thread_name("tarn-rows")
                .enable_all()
                .build()
                .inspect_err(|e| tracing::warn!(error = %e, "no runtime for result producers; they share the connections' runtime"))
                .ok()
        })
        .as_ref()
}

/// A producer task, aborted when its stream is dropped (DataFusion's
/// `SpawnedTask` does the same but spawns only on the current runtime).
struct Producer(tokio::task::JoinHandle<()>);

impl Drop for Producer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Encoder {
    columns: Vec<ResultColumn>,
    opts: EncodeOptions,
}

impl Encoder {
    fn encode(&self, batch: datafusion::error::Result<RecordBatch>) -> Result<Vec<DataRow>> {
        batch.map_err(TarnError::from).and_then(|b| encode_batch(&b, &self.columns, &self.opts))
    }
}

enum Source {
    Inline { batches: SendableRecordBatchStream, encoder: Encoder, pulled: usize },
    Ahead { rows: tokio::sync::mpsc::Receiver<Result<Vec<DataRow>>>, producer: Producer },
    Done,
}

struct RowStream {
    source: Source,
    /// The encoded rows of the batch being sent.
    rows: std::vec::IntoIter<DataRow>,
}

impl RowStream {
    /// Hand the rest of `batches` to a producer task.
    fn go_ahead(batches: SendableRecordBatchStream, encoder: Encoder) -> Source {
        let (tx, rx) = tokio::sync::mpsc::channel(BATCHES_AHEAD);
        let produce = async move {
            let mut batches = batches;
            while let Some(batch) = batches.next().await {
                let encoded = encoder.encode(batch);
                let failed = encoded.is_err();
                if tx.send(encoded).await.is_err() || failed {
                    return;
                }
            }
        };
        let producer = Producer(match producer_runtime() {
            Some(runtime) => runtime.spawn(produce),
            None => tokio::spawn(produce),
        });
        Source::Ahead { rows: rx, producer }
    }

    /// The next batch's rows, `None` at the end of the result.
    fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<DataRow>>>> {
        loop {
            match &mut self.source {
                Source::Inline { batches, encoder, pulled } if *pulled < INLINE_BATCHES => {
                    return match ready!(batches.poll_next_unpin(cx)) {
                        Some(batch) => {
                            *pulled += 1;
                            Poll::Ready(Some(encoder.encode(batch)))
                        }
                        None => Poll::Ready(None),
                    };
                }
                Source::Inline { .. } => {
                    let Source::Inline { batches, encoder, .. } = std::mem::replace(&mut self.source, Source::Done) else {
                        unreachable!()
                    };
                    self.source = Self::go_ahead(batches, encoder);
                }
                Source::Ahead { rows, producer } => {
                    if let Some(batch) = ready!(rows.poll_recv(cx)) {
                        return Poll::Ready(Some(batch));
                    }
                    // The producer ended: at the end of the result, or by a
                    // panic, which must not pass for the end.
                    return match ready!(Pin::new(&mut producer.0).poll(cx)) {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(TarnError::new(
                            crate::error::sqlstate::INTERNAL_ERROR,
                            format!("producing the result failed: {e}"),
                        )))),
                    };
                }
                Source::Done => return Poll::Ready(None),
            }
        }
    }
}

impl Stream for RowStream {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(row) = self.rows.next() {
                return Poll::Ready(Some(Ok(row)));
            }
            match ready!(self.poll_batch(cx)) {
                Some(Ok(rows)) => self.rows = rows.into_iter(),
                Some(Err(e)) => {
                    self.source = Source::Done;
                    return Poll::Ready(Some(Err(to_pgwire(e))));
                }
                None => {
                    self.source = Source::Done;
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pgwire::error::PgWireError;

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

    fn numbers(batches: usize, per_batch: i32) -> (Arc<Schema>, Vec<datafusion::error::Result<RecordBatch>>) {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]));
        let batches = (0..batches as i32)
            .map(|b| {
                let values: Vec<i32> = (b * per_batch..(b + 1) * per_batch).collect();
                Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(values))]).unwrap())
            })
            .collect();
        (schema, batches)
    }

    fn stream_of(
        schema: Arc<Schema>,
        batches: impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static,
    ) -> Vec<PgWireResult<DataRow>> {
        let batches = Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema.clone(), batches));
        let (_, columns) = describe_columns(&schema, &[Format::Text]);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(row_stream(batches, columns, EncodeOptions::default()).collect())
    }

    fn texts(rows: &[PgWireResult<DataRow>]) -> Vec<String> {
        rows.iter().filter_map(|r| r.as_ref().ok()).map(|r| String::from_utf8(r.data[4..].to_vec()).unwrap()).collect()
    }

    #[test]
    fn a_long_result_arrives_whole_and_in_order_through_the_producer() {
        let (schema, batches) = numbers(9, 5);
        let rows = stream_of(schema, futures::stream::iter(batches));
        assert_eq!(texts(&rows), (0..45).map(|n| n.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_the_producer_meets_ends_the_result_after_the_rows_before_it() {
        let (schema, mut batches) = numbers(6, 2);
        batches.insert(4, Err(datafusion::error::DataFusionError::Execution("boom".into())));
        let rows = stream_of(schema, futures::stream::iter(batches));
        assert_eq!(texts(&rows), (0..8).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(rows.len(), 9, "the rows before the error, the error, nothing after it");
        assert!(matches!(rows.last(), Some(Err(PgWireError::UserError(info))) if info.message.contains("boom")));
    }

    #[test]
    fn a_producer_that_panics_ends_the_result_with_an_error_not_as_if_complete() {
        let (schema, batches) = numbers(4, 2);
        let panicking = futures::stream::iter(batches).chain(futures::stream::poll_fn(
            |_| -> Poll<Option<datafusion::error::Result<RecordBatch>>> { panic!("a bug in an operator") },
        ));
        let rows = stream_of(schema, panicking);
        assert_eq!(texts(&rows).len(), 8);
        assert!(matches!(rows.last(), Some(Err(PgWireError::UserError(info))) if info.code == "XX000"));
    }
}
