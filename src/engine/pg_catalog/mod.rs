//! `pg_catalog` and `information_schema`: PostgreSQL's system catalogs, built
//! on demand from Tarn's live catalog.
//!
//! Every system table a client may read is a [`SystemTable`] with
//! PostgreSQL 15's own oid and column set (`generated.rs`, generated from a
//! real server by `tools/pg_catalog/generate.py`): clients read catalogs with
//! `SELECT c.*` and by column position, so the columns must be PostgreSQL's
//! exactly. When a query names one, its rows are built from a [`Snapshot`] of
//! the catalog taken at planning time (tables, views, keys, indexes,
//! defaults, the session's settings) plus the built-in rows PostgreSQL itself
//! has (types, functions, access methods: `data/*.tsv`), and handed to
//! DataFusion as a `MemTable`. Catalogs are small, so building them per query
//! costs little and can never be stale.
//!
//! Why not the `datafusion-pg-catalog` crate: it builds keys, indexes and
//! defaults (`pg_constraint`, `pg_index`, `pg_attrdef`) from a static snapshot
//! of an empty PostgreSQL, where Tarn must show its live constraints; and it
//! enables DataFusion's default features (parquet, compression) and pulls a
//! second pgwire (0.40, through `arrow-pg`), which would rebuild DataFusion
//! and Lance for code Tarn does not use.
//!
//! Object ids are derived from Tarn's durable table ids (see `oids.rs`), so
//! they are stable across restarts as PostgreSQL's are.

pub mod functions;
mod generated;
mod information_schema;
pub mod oids;
mod relations;
mod server;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use async_trait::async_trait;
use datafusion::catalog::{MemTable, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::storage::Storage;
use crate::storage::catalog::{TableDef, ViewDef};
use crate::types::PgType;
use crate::types::copy::{CopyFormat, CopyOptions, Fields, RowReader};

pub use generated::SYSTEM_TABLES;

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// A PostgreSQL system table or view: where it lives, its oid, its kind
/// (`r` table, `v` view) and its columns (name, Tarn type name).
#[derive(Debug)]
pub struct SystemTable {
    pub schema: &'static str,
    pub name: &'static str,
    pub oid: u32,
    pub kind: char,
    pub columns: &'static [(&'static str, &'static str)],
}

impl SystemTable {
    pub fn find(schema: &str, name: &str) -> Option<&'static SystemTable> {
        SYSTEM_TABLES.iter().find(|t| t.schema == schema && t.name == name)
    }

    fn column_type(&self, i: usize) -> PgType {
        PgType::from_name(self.columns[i].1).expect("generated.rs names only Tarn types")
    }
}

/// What the catalogs and catalog functions read of the session they run in.
/// Implemented by the session (the engine does not depend on it).
pub trait SessionInfo: Send + Sync {
    fn user(&self) -> String;
    fn database(&self) -> String;
    fn backend_pid(&self) -> i32;
    fn application_name(&self) -> String;
    /// `SHOW name` (42704 for an unknown name).
    fn setting(&self, name: &str) -> crate::error::Result<String>;
    /// `SET name = value` for the session; returns the value now in effect.
    fn set_setting(&self, name: &str, value: &str) -> crate::error::Result<String>;
    /// Every setting, for `pg_settings`.
    fn settings(&self) -> Vec<(String, String)>;
}

/// A session with no connection behind it (tests, DEFAULT planning).
#[derive(Debug, Default)]
pub struct Detached;

impl SessionInfo for Detached {
    fn user(&self) -> String {
        "tarn".into()
    }
    fn database(&self) -> String {
        "tarn".into()
    }
    fn backend_pid(&self) -> i32 {
        0
    }
    fn application_name(&self) -> String {
        String::new()
    }
    fn setting(&self, name: &str) -> crate::error::Result<String> {
        Err(crate::error::TarnError::new(
            crate::error::sqlstate::UNDEFINED_OBJECT,
            format!("unrecognized configuration parameter \"{name}\""),
        ))
    }
    fn set_setting(&self, name: &str, _value: &str) -> crate::error::Result<String> {
        self.setting(name)
    }
    fn settings(&self) -> Vec<(String, String)> {
        vec![]
    }
}

/// The schema names a `search_path` value lists, in order (`$user` is `user`).
pub fn search_path(path: &str, user: &str) -> Vec<String> {
    path.split(',')
        .map(|p| {
            let p = p.trim();
            let name = match p.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => p.to_ascii_lowercase(),
            };
            if name == "$user" { user.to_string() } else { name }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// `pg_type.typname` of a built-in type oid (`int4`, `_text`).
pub fn builtin_type_name(oid: u32) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<HashMap<u32, &'static str>> = std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            server::PG_TYPE
                .lines()
                .filter_map(|l| {
                    let mut f = l.split('\t');
                    Some((f.next()?.parse().ok()?, f.next()?))
                })
                .collect()
        })
        .get(&oid)
        .copied()
}

/// `pg_type.typname` of a Tarn type.
pub fn server_type_name(ty: &PgType) -> String {
    builtin_type_name(oids::type_oid(ty)).unwrap_or("text").to_string()
}

/// The catalog as one query sees it.
pub struct Snapshot {
    pub tables: Vec<TableDef>,
    pub views: Vec<ViewDef>,
    pub schemas: Vec<crate::storage::catalog::SchemaDef>,
    pub session: Arc<dyn SessionInfo>,
    storage: Arc<Storage>,
}

impl Snapshot {
    pub fn take(storage: &Arc<Storage>, session: &Arc<dyn SessionInfo>) -> Snapshot {
        let (mut tables, mut views) = storage.definitions();
        tables.sort_by_key(|t| t.id);
        views.sort_by_key(|v| v.id);
        Snapshot { tables, views, schemas: storage.schemas(), session: session.clone(), storage: storage.clone() }
    }

    /// `pg_namespace.oid` of a schema.
    pub fn namespace_oid(&self, schema: &str) -> u32 {
        match schema {
            PG_CATALOG => oids::PG_CATALOG_NAMESPACE,
            INFORMATION_SCHEMA => oids::INFORMATION_SCHEMA_NAMESPACE,
            crate::engine::PUBLIC => oids::PUBLIC_NAMESPACE,
            other => self.schemas.iter().find(|s| s.name == other).map(|s| oids::relation(s.id)).unwrap_or(oids::PUBLIC_NAMESPACE),
        }
    }

    /// Rows in a table now (committed, as this server sees them).
    pub fn row_count(&self, table: &TableDef) -> u64 {
        self.storage.row_count(table.id).unwrap_or(0)
    }
}

/// The rows of one system table, cell by cell as PostgreSQL's text form;
/// turned into Arrow by the same text parsers COPY uses.
pub struct Rows {
    table: &'static SystemTable,
    index: HashMap<&'static str, usize>,
    cells: Vec<Vec<Option<String>>>,
}

/// A cell's text (`None` is NULL).
pub type Cell = Option<String>;

/// `Some(value.to_string())`.
pub fn cell(value: impl ToString) -> Cell {
    Some(value.to_string())
}

impl Rows {
    pub fn new(table: &'static SystemTable) -> Rows {
        let index = table.columns.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect();
        Rows { table, index, cells: vec![] }
    }

    /// Add a row: the named cells, every other column at its type's zero
    /// (`false`, `0`) or NULL. Catalog columns are NOT NULL in PostgreSQL,
    /// and a NULL bool would make `WHERE NOT attisdropped` drop the row.
    pub fn push(&mut self, cells: &[(&str, Cell)]) {
        let mut row: Vec<Cell> = self
            .table
            .columns
            .iter()
            .map(|(_, ty)| match *ty {
                "boolean" => cell("f"),
                "smallint" | "integer" | "bigint" | "real" | "oid" => cell("0"),
                _ => None,
            })
            .collect();
        for (name, value) in cells {
            let i = self.index.get(name).unwrap_or_else(|| panic!("{} has no column {name}", self.table.name));
            row[*i] = value.clone();
        }
        self.cells.push(row);
    }

    /// Add PostgreSQL's built-in rows from `data/<table>.tsv` (COPY text, in
    /// column order).
    pub fn push_builtin(&mut self, tsv: &str) {
        let mut reader = RowReader::new(CopyOptions::new(CopyFormat::Text));
        reader.push(tsv.as_bytes());
        let mut fields = Fields::default();
        while reader.next_row(&mut fields, true).expect("generated TSV is valid COPY text") {
            self.cells.push((0..fields.len()).map(|i| fields.get(i).map(str::to_string)).collect());
        }
    }

    pub fn into_batch(self) -> DfResult<RecordBatch> {
        let schema = schema_of(self.table);
        let columns = (0..self.table.columns.len())
            .map(|i| {
                let text = StringArray::from_iter(self.cells.iter().map(|r| r[i].as_deref()));
                crate::types::decode::text_column(&text, &self.table.column_type(i)).map_err(|(row, e)| {
                    DataFusionError::Internal(format!("{}.{} row {row}: {e}", self.table.name, self.table.columns[i].0))
                })
            })
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

fn schema_of(table: &SystemTable) -> arrow::datatypes::SchemaRef {
    let fields: Vec<_> = (0..table.columns.len()).map(|i| table.column_type(i).to_field(table.columns[i].0, true)).collect();
    Arc::new(arrow::datatypes::Schema::new(fields))
}

/// The rows of `table` in `snap`.
fn build(table: &'static SystemTable, snap: &Snapshot) -> DfResult<RecordBatch> {
    let mut rows = Rows::new(table);
    match table.schema {
        INFORMATION_SCHEMA => information_schema::fill(table.name, &mut rows, snap),
        _ => {
            if !relations::fill(table.name, &mut rows, snap) {
                server::fill(table.name, &mut rows, snap);
            }
        }
    }
    rows.into_batch()
}

/// `pg_catalog` or `information_schema` as a DataFusion schema.
pub struct SystemSchema {
    pub schema: &'static str,
    pub storage: Arc<Storage>,
    pub session: Arc<dyn SessionInfo>,
}

impl fmt::Debug for SystemSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemSchema({})", self.schema)
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        SYSTEM_TABLES.iter().filter(|t| t.schema == self.schema).map(|t| t.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = SystemTable::find(self.schema, name) else { return Ok(None) };
        let snap = Snapshot::take(&self.storage, &self.session);
        let batch = build(table, &snap)?;
        if batch.num_rows() == 0 {
            return Ok(Some(Arc::new(EmptySystemTable { schema: batch.schema() })));
        }
        Ok(Some(Arc::new(MemTable::try_new(batch.schema(), vec![vec![batch]])?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        SystemTable::find(self.schema, name).is_some()
    }
}

/// A system table with no rows now (most catalogs of features Tarn lacks).
/// [`FoldEmptyCatalogs`] plans it as an empty relation, so DataFusion drops
/// what reads it: psql's `\d` reads `pg_policy` with a correlated
/// `ARRAY(SELECT … WHERE oid = ANY(pol.polroles))` DataFusion cannot
/// decorrelate, which is then never planned.
#[derive(Debug)]
pub struct EmptySystemTable {
    schema: arrow::datatypes::SchemaRef,
}

#[async_trait]
impl TableProvider for EmptySystemTable {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        Ok(Arc::new(datafusion::physical_plan::empty::EmptyExec::new(schema)))
    }
}

/// Plans scans of [`EmptySystemTable`]s as empty relations (an analyzer rule,
/// so the optimizer's empty-relation propagation sees them).
#[derive(Debug, Default)]
pub struct FoldEmptyCatalogs;

impl datafusion::optimizer::AnalyzerRule for FoldEmptyCatalogs {
    fn name(&self) -> &str {
        "tarn_fold_empty_catalogs"
    }

    fn analyze(&self, plan: datafusion::logical_expr::LogicalPlan, _: &datafusion::config::ConfigOptions) -> DfResult<datafusion::logical_expr::LogicalPlan> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::logical_expr::{EmptyRelation, Expr, LogicalPlan};
        plan.transform_up_with_subqueries(|plan| {
            if let LogicalPlan::TableScan(scan) = &plan {
                let empty = datafusion::datasource::source_as_provider(&scan.source)
                    .is_ok_and(|p| (p.as_ref() as &dyn std::any::Any).is::<EmptySystemTable>());
                if empty && scan.filters.is_empty() {
                    let schema = scan.projected_schema.clone();
                    return Ok(Transformed::yes(LogicalPlan::EmptyRelation(EmptyRelation { produce_one_row: false, schema })));
                }
            }
            // A scalar subquery over no rows is NULL (SQLAlchemy asks
            // pg_sequence this way, correlated so DataFusion cannot join it).
            plan.map_expressions(|e| {
                e.transform_up(|e| match &e {
                    Expr::ScalarSubquery(sq) if yields_no_rows(&sq.subquery) || first_value_of_nothing(&sq.subquery) => {
                        let ty = sq.subquery.schema().field(0).data_type().clone();
                        Ok(Transformed::yes(Expr::Literal(datafusion::scalar::ScalarValue::try_from(&ty)?, None)))
                    }
                    _ => Ok(Transformed::no(e)),
                })
            })
        })
        .map(|t| t.data)
    }
}

/// `SELECT first_value(x) FROM <no rows>` (what `sql::rewrite` makes of a
/// correlated scalar subquery): one row, NULL.
fn first_value_of_nothing(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    use datafusion::logical_expr::{Expr, LogicalPlan};
    match plan {
        LogicalPlan::Projection(p) => first_value_of_nothing(&p.input),
        LogicalPlan::SubqueryAlias(a) => first_value_of_nothing(&a.input),
        LogicalPlan::Aggregate(a) => {
            a.group_expr.is_empty()
                && a.aggr_expr.iter().all(|e| {
                    let e = match e {
                        Expr::Alias(al) => al.expr.as_ref(),
                        e => e,
                    };
                    matches!(e, Expr::AggregateFunction(f) if f.func.name() == "first_value")
                })
                && yields_no_rows(&a.input)
        }
        _ => false,
    }
}

/// Whether a plan certainly yields no rows (read from an empty relation
/// through row-preserving or row-removing steps; not an aggregate, which
/// yields a row even over none).
fn yields_no_rows(plan: &datafusion::logical_expr::LogicalPlan) -> bool {
    use datafusion::logical_expr::{JoinType, LogicalPlan};
    match plan {
        LogicalPlan::EmptyRelation(e) => !e.produce_one_row,
        LogicalPlan::Projection(p) => yields_no_rows(&p.input),
        LogicalPlan::Filter(f) => yields_no_rows(&f.input),
        LogicalPlan::Sort(s) => yields_no_rows(&s.input),
        LogicalPlan::Limit(l) => yields_no_rows(&l.input),
        LogicalPlan::SubqueryAlias(a) => yields_no_rows(&a.input),
        LogicalPlan::Distinct(d) => yields_no_rows(d.input()),
        LogicalPlan::Join(j) if j.join_type == JoinType::Inner => yields_no_rows(&j.left) || yields_no_rows(&j.right),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_file_parses_into_its_table() {
        for (name, tsv) in server::BUILTIN {
            let table = SystemTable::find(PG_CATALOG, name).unwrap();
            let mut rows = Rows::new(table);
            rows.push_builtin(tsv);
            let n = rows.cells.len();
            assert!(n > 0, "{name}");
            assert!(rows.cells.iter().all(|r| r.len() == table.columns.len()), "{name}: ragged rows");
            let batch = rows.into_batch().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(batch.num_rows(), n);
        }
    }

    #[test]
    fn unnamed_cells_take_their_type_zero() {
        let table = SystemTable::find(PG_CATALOG, "pg_attribute").unwrap();
        let mut rows = Rows::new(table);
        rows.push(&[("attname", cell("a"))]);
        let batch = rows.into_batch().unwrap();
        let dropped = batch.column_by_name("attisdropped").unwrap();
        assert_eq!(dropped.null_count(), 0);
    }
}
