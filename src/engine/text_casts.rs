//! Casts from text that Arrow's cast kernels do not do as PostgreSQL does:
//! to `interval` (PostgreSQL's own syntax: `1 day 03:04:05`, `-1 mons +2
//! days`, `@ 2 hours ago`), to arrays (`'{1,NULL,3}'::int[]`), to `bytea`
//! (`'\x00ff'` is hex input, not those four characters), and to the text
//! types Tarn checks and normalises (`uuid`, `json`, `jsonb`, `name`).
//!
//! An [`AnalyzerRule`] rewrites `CAST(text AS T)` for those T into
//! `text_in(text)`, a [`ScalarUDF`] that parses each value with the same
//! decoder text-format Bind parameters use (`types::decode::decode_text`), so
//! a literal, a parameter and a COPY field all read the same way. It runs
//! after DataFusion's own analyzer rules (type coercion inserts such casts for
//! INSERT … VALUES into typed columns).

use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::scalar::ScalarValue;

use crate::types::PgType;
use crate::types::decode::{decode_text, parsed_from_text_by_tarn};

/// The analyzer rules every Tarn session plans with: DataFusion's, then ours.
pub fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    // Before type coercion, which refuses to compare a list with a string.
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![Arc::new(super::pg_catalog::FoldEmptyCatalogs), Arc::new(ArrayLiterals)];
    rules.extend(datafusion::optimizer::Analyzer::new().rules);
    rules.push(Arc::new(TextCasts));
    rules
}

/// A string literal compared with an array takes the array's type, as an
/// untyped literal does in PostgreSQL: `pol.polroles = '{0}'` compares two
/// oid[] values (psql's `\d` asks this). DataFusion's coercion has no rule
/// for List against Utf8.
#[derive(Debug, Default)]
pub struct ArrayLiterals;

impl AnalyzerRule for ArrayLiterals {
    fn name(&self) -> &str {
        "tarn_array_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        use datafusion::logical_expr::BinaryExpr;
        plan.transform_up_with_subqueries(|plan| {
            let schema = match plan.inputs().as_slice() {
                [input] => Arc::clone(input.schema()),
                _ => return Ok(Transformed::no(plan)),
            };
            plan.map_expressions(|e| {
                e.transform_up(|e| {
                    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &e else { return Ok(Transformed::no(e)) };
                    let is_text_literal = |x: &Expr| matches!(x, Expr::Literal(ScalarValue::Utf8(_), _));
                    let list_type = |x: &Expr| match x.get_type(&schema) {
                        Ok(dt @ DataType::List(_)) => Some(PgType::from_arrow(&dt)),
                        _ => None,
                    };
                    let as_array = |lit: &Expr, ty: PgType| {
                        let udf = Arc::new(ScalarUDF::new_from_impl(TextIn::new(ty)));
                        Box::new(Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![lit.clone()])))
                    };
                    let rewritten = match (list_type(left), list_type(right)) {
                        (Some(ty), None) if is_text_literal(right) => BinaryExpr { left: left.clone(), op: *op, right: as_array(right, ty) },
                        (None, Some(ty)) if is_text_literal(left) => BinaryExpr { left: as_array(left, ty), op: *op, right: right.clone() },
                        _ => return Ok(Transformed::no(e)),
                    };
                    Ok(Transformed::yes(Expr::BinaryExpr(rewritten)))
                })
            })
        })
        .map(|t| t.data)
    }
}

/// Give a result column that is a cast to a tagged type (`'…'::jsonb`,
/// `x::uuid`, `1.5::numeric`) its tag, by an alias carrying the metadata:
/// DataFusion's `Cast` keeps the tag in its target field but not in the
/// plan's schema, and RowDescription is built from that schema. Applied to
/// each freshly planned statement, so Describe and Execute agree.
pub fn tag_result_casts(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::metadata::FieldMetadata;
    use datafusion::logical_expr::expr::Alias;
    let tagged = |e: &Expr| match e {
        Expr::Cast(Cast { field, .. }) if field.metadata().contains_key(crate::types::PG_TYPE_METADATA_KEY) => {
            Some(FieldMetadata::from(field.metadata()))
        }
        _ => None,
    };
    plan.transform_up(|plan| {
        let LogicalPlan::Projection(_) = &plan else { return Ok(Transformed::no(plan)) };
        let mut changed = false;
        let plan = plan
            .map_expressions(|e| {
                let out = match e {
                    Expr::Alias(Alias { expr, relation, name, metadata: None }) if tagged(&expr).is_some() => {
                        let metadata = tagged(&expr);
                        Transformed::yes(Expr::Alias(Alias { expr, relation, name, metadata }))
                    }
                    e => match tagged(&e) {
                        Some(metadata) => {
                            let name = e.schema_name().to_string();
                            Transformed::yes(e.alias_with_metadata(name, Some(metadata)))
                        }
                        None => Transformed::no(e),
                    },
                };
                changed |= out.transformed;
                Ok(out)
            })?
            .data;
        Ok(if changed { Transformed::yes(plan.recompute_schema()?) } else { Transformed::no(plan) })
    })
    .map(|t| t.data)
}

#[derive(Debug, Default)]
pub struct TextCasts;

impl AnalyzerRule for TextCasts {
    fn name(&self) -> &str {
        "tarn_text_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            // Expressions see their input's columns (VALUES and the like have none).
            let schema = match plan.inputs().as_slice() {
                [input] => Arc::clone(input.schema()),
                _ => Arc::new(DFSchema::empty()),
            };
            plan.map_expressions(|e| e.transform_up(|e| rewrite(e, &schema)))
        })
        .map(|t| t.data)
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(Cast { expr, field }) = &e else { return Ok(Transformed::no(e)) };
    // An array cast to text prints as PostgreSQL's `{a,b}`, not Arrow's `[a, b]`.
    let to_text = matches!(field.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8);
    if to_text && !field.metadata().contains_key(crate::types::PG_TYPE_METADATA_KEY) {
        if let Ok(input @ DataType::List(_)) = expr.get_type(schema) {
            let name = e.schema_name().to_string();
            let udf = Arc::new(ScalarUDF::new_from_impl(TextOut { input: PgType::from_arrow(&input), signature: Signature::any(1, Volatility::Stable) }));
            return Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![expr.as_ref().clone()])).alias(name)));
        }
    }
    let target = PgType::from_field(field);
    if !parsed_from_text_by_tarn(&target) {
        return Ok(Transformed::no(e));
    }
    let is_text = matches!(expr.get_type(schema), Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    if !is_text {
        return Ok(Transformed::no(e));
    }
    // Keep the cast's name: the plan's schema must not change.
    let name = e.schema_name().to_string();
    let udf = Arc::new(ScalarUDF::new_from_impl(TextIn::new(target)));
    Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![expr.as_ref().clone()])).alias(name)))
}

/// `text_out(value)`: a value as PostgreSQL's text output of its type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextOut {
    input: PgType,
    signature: Signature,
}

impl ScalarUDFImpl for TextOut {
    fn name(&self) -> &str {
        "text_out"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let array = args.args[0].to_array(n)?;
        let opts = crate::types::encode::EncodeOptions::default();
        let encoded = crate::types::encode::encode_column(&array, &self.input, crate::types::encode::Format::Text, &opts).map_err(crate::error::to_df)?;
        let out: arrow::array::StringArray = (0..array.len())
            .map(|row| {
                let cell = encoded.cell(row);
                if cell[..4] == (-1i32).to_be_bytes() { None } else { Some(String::from_utf8_lossy(&cell[4..]).into_owned()) }
            })
            .collect();
        let out: arrow::array::ArrayRef = Arc::new(out);
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?),
            ColumnarValue::Array(_) => ColumnarValue::Array(out),
        })
    }
}

/// `text_in(text)`: text parsed as one PostgreSQL type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextIn {
    target: PgType,
    signature: Signature,
}

impl TextIn {
    fn new(target: PgType) -> TextIn {
        // Stable, not Immutable: constant folding would turn `text_in('…')`
        // into a bare literal and lose the result's type tag (jsonb, uuid).
        TextIn { target, signature: Signature::string(1, Volatility::Stable) }
    }
}

impl ScalarUDFImpl for TextIn {
    fn name(&self) -> &str {
        "text_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.target.arrow_type())
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(self.target.to_field("text_in", true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let parse = |v: Option<&str>| -> Result<ScalarValue> {
            let value = match v {
                None => ScalarValue::try_from(&self.target.arrow_type())?,
                Some(v) => decode_text(v, &self.target).map_err(crate::error::to_df)?,
            };
            Ok(if value.data_type() == self.target.arrow_type() { value } else { value.cast_to(&self.target.arrow_type())? })
        };
        match &args.args[0] {
            ColumnarValue::Scalar(s) => {
                let v = match s.cast_to(&DataType::Utf8)? {
                    ScalarValue::Utf8(v) => v,
                    other => return Err(crate::error::to_df(crate::error::TarnError::internal(format!("text_in got {other:?}")))),
                };
                Ok(ColumnarValue::Scalar(parse(v.as_deref())?))
            }
            ColumnarValue::Array(a) => {
                let a = arrow::compute::cast(a, &DataType::Utf8)?;
                let parsed = crate::types::decode::text_column(a.as_string::<i32>(), &self.target).map_err(|(_, e)| crate::error::to_df(e))?;
                Ok(ColumnarValue::Array(parsed))
            }
        }
    }
}
