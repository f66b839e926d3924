//! How SQL type names in queries (`CAST(x AS uuid)`, `'…'::jsonb`,
//! `$1::int[]`) become Arrow types: DataFusion's [`TypePlanner`] hook, so a
//! cast yields the same Arrow type and `tarn.pg_type` tag as a stored column
//! of that type, and RowDescription names the PostgreSQL type.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast;

use super::{PG_TYPE_METADATA_KEY, PgType};

#[derive(Debug, Default)]
pub struct PgTypePlanner;

impl TypePlanner for PgTypePlanner {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        // Only the types DataFusion has no SQL name for, or maps differently
        // (TIME is nanoseconds there); the rest keep DataFusion's own planning.
        let Ok(pg) = PgType::from_sql(sql_type) else { return Ok(None) };
        let tagged = |pg: &PgType| {
            Field::new("", pg.arrow_type(), true)
                .with_metadata(HashMap::from([(PG_TYPE_METADATA_KEY.to_string(), pg.name())]))
        };
        Ok(match &pg {
            // Unconstrained numeric is tagged so its values print with their
            // own digits (trailing storage zeros trimmed), as PostgreSQL's do.
            PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Oid | PgType::Time | PgType::Numeric(None) => {
                Some(Arc::new(tagged(&pg)))
            }
            PgType::Array(elem) if matches!(**elem, PgType::Uuid | PgType::Json | PgType::Jsonb | PgType::Name | PgType::Oid | PgType::Time) => {
                Some(Arc::new(tagged(&pg)))
            }
            _ => None,
        })
    }
}
