//! ID-generating functions, for column defaults and queries alike:
//! `gen_random_uuid()` (PostgreSQL's), and Tarn's time-sortable
//! `snowflake_id()`, `uuid_v7()` and `ulid()` — each monotonic within the
//! process, so ids generated later sort later.
//!
//! UUIDs and ULIDs come from the `uuid` (its `now_v7` keeps a shared
//! monotonic counter, RFC 9562 method 1) and `ulid` (monotonic `Generator`)
//! crates. Snowflake ids have no well-kept crate with the layout we want, so
//! the few lines are here.
//!
//! UUIDs are returned as text until Tarn has a `uuid` type (see
//! docs/types.md).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// Milliseconds of the snowflake epoch, 2020-01-01T00:00:00Z: 41 bits of
/// milliseconds from there last until 2089.
const SNOWFLAKE_EPOCH_MS: u64 = 1_577_836_800_000;

/// Which id a [`IdFunction`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    RandomUuid,
    UuidV7,
    Ulid,
    Snowflake,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IdFunction {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for IdFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::RandomUuid => "gen_random_uuid",
            Kind::UuidV7 => "uuid_v7",
            Kind::Ulid => "ulid",
            Kind::Snowflake => "snowflake_id",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(if self.kind == Kind::Snowflake { DataType::Int64 } else { DataType::Utf8 })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let array: arrow::array::ArrayRef = match self.kind {
            Kind::RandomUuid => Arc::new(StringArray::from_iter_values((0..n).map(|_| uuid::Uuid::new_v4().to_string()))),
            Kind::UuidV7 => Arc::new(StringArray::from_iter_values((0..n).map(|_| uuid::Uuid::now_v7().to_string()))),
            Kind::Ulid => {
                let mut g = ulid_generator().lock().unwrap();
                let ids = (0..n)
                    .map(|_| g.generate().map(|u| u.to_string()).map_err(|e| DataFusionError::Execution(format!("ulid(): {e}"))))
                    .collect::<Result<Vec<_>>>()?;
                Arc::new(StringArray::from(ids))
            }
            Kind::Snowflake => {
                let mut s = snowflake().lock().unwrap();
                Arc::new(Int64Array::from_iter_values((0..n).map(|_| s.next(now_ms()))))
            }
        };
        Ok(ColumnarValue::Array(array))
    }
}

fn ulid_generator() -> &'static Mutex<ulid::Generator> {
    static G: OnceLock<Mutex<ulid::Generator>> = OnceLock::new();
    G.get_or_init(|| Mutex::new(ulid::Generator::new()))
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Snowflake id state: 41-bit milliseconds since [`SNOWFLAKE_EPOCH_MS`],
/// 10-bit node id, 12-bit sequence within the millisecond.
#[derive(Debug)]
pub struct Snowflake {
    node: u64,
    last_ms: u64,
    seq: u64,
}

impl Snowflake {
    pub fn new(node: u16) -> Snowflake {
        Snowflake { node: u64::from(node) & 0x3ff, last_ms: 0, seq: 0 }
    }

    /// The next id at wall-clock `now_ms`. Never smaller than the last one:
    /// a clock that steps back, or more than 4096 ids in a millisecond,
    /// borrow from the next millisecond instead.
    pub fn next(&mut self, now_ms: u64) -> i64 {
        let ms = now_ms.saturating_sub(SNOWFLAKE_EPOCH_MS);
        if ms > self.last_ms {
            self.last_ms = ms;
            self.seq = 0;
        } else {
            self.seq += 1;
            if self.seq > 0xfff {
                self.last_ms += 1;
                self.seq = 0;
            }
        }
        (((self.last_ms & ((1 << 41) - 1)) << 22) | (self.node << 12) | self.seq) as i64
    }
}

fn snowflake() -> &'static Mutex<Snowflake> {
    static S: OnceLock<Mutex<Snowflake>> = OnceLock::new();
    S.get_or_init(|| {
        // The node id distinguishes servers that write the same tables;
        // TARN_NODE_ID sets it (0–1023).
        let node = std::env::var("TARN_NODE_ID").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
        Mutex::new(Snowflake::new(node))
    })
}

pub fn register(ctx: &SessionContext) {
    for kind in [Kind::RandomUuid, Kind::UuidV7, Kind::Ulid, Kind::Snowflake] {
        ctx.register_udf(ScalarUDF::from(IdFunction { kind, signature: Signature::exact(vec![], Volatility::Volatile) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_ids_are_monotonic_and_laid_out_as_documented() {
        let mut s = Snowflake::new(5);
        let t = SNOWFLAKE_EPOCH_MS + 1000;
        let a = s.next(t);
        assert_eq!(a >> 22, 1000);
        assert_eq!((a >> 12) & 0x3ff, 5);
        assert_eq!(a & 0xfff, 0);
        // Same millisecond: the sequence counts up.
        assert_eq!(s.next(t), a + 1);
        // The clock steps back: still larger.
        let c = s.next(t - 500);
        assert!(c > a + 1);
        // 4096 ids in one millisecond roll into the next.
        let mut last = c;
        for _ in 0..5000 {
            let n = s.next(t);
            assert!(n > last);
            last = n;
        }
        assert!(last >> 22 > 1000);
    }

    #[test]
    fn uuid_v7_and_ulid_sort_in_creation_order() {
        let uuids: Vec<String> = (0..2000).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        assert!(uuids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(&uuids[0][14..15], "7");
        let mut g = ulid::Generator::new();
        let ulids: Vec<String> = (0..2000).map(|_| g.generate().unwrap().to_string()).collect();
        assert!(ulids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ulids[0].len(), 26);
    }
}
