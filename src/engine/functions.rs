//! PostgreSQL functions DataFusion lacks or answers differently, as
//! DataFusion `ScalarUDF`s registered on every session.

use arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// `version()`: clients (SQLAlchemy, pgAdmin, JDBC tools) parse
/// `PostgreSQL <major>.<minor>` out of it; DataFusion's says "Apache DataFusion".
#[derive(Debug, PartialEq, Eq, Hash)]
struct Version {
    signature: Signature,
}

pub fn version_string() -> String {
    format!(
        "PostgreSQL {} on {}-linux, 64-bit",
        crate::session::settings::SERVER_VERSION,
        std::env::consts::ARCH
    )
}

impl ScalarUDFImpl for Version {
    fn name(&self) -> &str {
        "version"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version_string()))))
    }
}

/// `generate_series` (and `range`) as DataFusion has them, except that a
/// call whose arguments come from an outer query — psql's `\d` has one,
/// `generate_series(0, array_upper(pr.prattrs, 1))` inside a correlated
/// subquery, which DataFusion evaluates at planning time — is planned as a
/// table that fails with 0A000 if it is ever read. Such a query still plans,
/// and runs whenever that branch is never taken (psql's is over the empty
/// `pg_publication_rel`).
#[derive(Debug)]
struct SeriesDeferringOuterArgs {
    inner: std::sync::Arc<dyn datafusion::catalog::TableFunctionImpl>,
}

impl datafusion::catalog::TableFunctionImpl for SeriesDeferringOuterArgs {
    fn call_with_args(&self, args: datafusion::catalog::TableFunctionArgs) -> Result<std::sync::Arc<dyn datafusion::datasource::TableProvider>> {
        use datafusion::common::tree_node::TreeNode;
        let correlated = args.exprs().iter().any(|e| e.exists(|x| Ok(matches!(x, datafusion::logical_expr::Expr::OuterReferenceColumn(..)))).unwrap_or(false));
        if !correlated {
            return self.inner.call_with_args(args);
        }
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new("value", DataType::Int64, false)]));
        Ok(std::sync::Arc::new(Unsupported { schema, what: "generate_series with arguments from an outer query" }))
    }
}

/// A table that exists for planning but cannot be read (see [`SeriesDeferringOuterArgs`]).
#[derive(Debug)]
struct Unsupported {
    schema: arrow::datatypes::SchemaRef,
    what: &'static str,
}

#[async_trait::async_trait]
impl datafusion::datasource::TableProvider for Unsupported {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Temporary
    }

    async fn scan(
        &self,
        _: &dyn datafusion::catalog::Session,
        _: Option<&Vec<usize>>,
        _: &[datafusion::logical_expr::Expr],
        _: Option<usize>,
    ) -> Result<std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        Err(crate::error::to_df(crate::error::TarnError::not_supported(format!("{} is not supported", self.what))))
    }
}

/// Register Tarn's functions, replacing DataFusion's of the same name.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Version { signature: Signature::exact(vec![], Volatility::Stable) }));
    super::ids::register(ctx);
    for f in datafusion::functions_table::all_default_table_functions() {
        ctx.register_udtf(f.name(), std::sync::Arc::new(SeriesDeferringOuterArgs { inner: f.function().clone() }));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_parses_like_postgres() {
        let v = super::version_string();
        assert!(v.starts_with("PostgreSQL 15."), "{v}");
        assert!(v.contains("(Tarn "), "{v}");
    }
}
