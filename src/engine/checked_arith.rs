//! Integer arithmetic that fails on overflow, as PostgreSQL's does.
//!
//! PostgreSQL raises 22003 (`bigint out of range`) when `+`, `-`, `*` or a
//! unary minus on `smallint`, `integer` or `bigint` overflows. DataFusion's
//! `BinaryExpr` wraps instead, unless built `with_fail_on_overflow`, which
//! its physical planner never does and no setting asks for. So the
//! first logical optimizer rule, [`CheckedIntegerArithmetic`], replaces integer
//! `+ - *` and negation with [`CheckedArith`] scalar functions that run
//! arrow's checked kernels (`add`, `sub`, `mul`, `neg`: the ones `BinaryExpr`
//! itself uses when failing on overflow). Each rewritten expression keeps
//! its name, so result columns are named as before. Running first, before
//! the simplifier, means constant arithmetic (`SELECT 2147483647 + 1`) is
//! folded through the checked function too; the optimizer's later passes
//! start with it again, so arithmetic another rule makes is checked as well.
//!
//! The rule runs after type coercion, when both operands of an integer
//! operator have one type; anything else (floats, numerics, dates, mixed
//! types) is left to `BinaryExpr`.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Datum};
use arrow::compute::kernels::numeric;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::{ApplyOrder, Optimizer, OptimizerConfig, OptimizerRule};

use crate::error::{TarnError, sqlstate, to_df};

/// One checked integer operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckedOp {
    Add,
    Sub,
    Mul,
    Neg,
}

/// A two-operand arrow arithmetic kernel.
pub type Kernel = fn(&dyn Datum, &dyn Datum) -> std::result::Result<ArrayRef, ArrowError>;

impl CheckedOp {
    fn name(self) -> &'static str {
        match self {
            CheckedOp::Add => "checked_add",
            CheckedOp::Sub => "checked_sub",
            CheckedOp::Mul => "checked_mul",
            CheckedOp::Neg => "checked_neg",
        }
    }

    /// The kernel of a two-operand op (None for negation).
    pub fn kernel(self) -> Option<Kernel> {
        match self {
            CheckedOp::Add => Some(numeric::add),
            CheckedOp::Sub => Some(numeric::sub),
            CheckedOp::Mul => Some(numeric::mul),
            CheckedOp::Neg => None,
        }
    }

    /// The shared function for this op.
    fn udf(self) -> Arc<ScalarUDF> {
        static UDFS: OnceLock<[Arc<ScalarUDF>; 4]> = OnceLock::new();
        let all = UDFS.get_or_init(|| {
            [CheckedOp::Add, CheckedOp::Sub, CheckedOp::Mul, CheckedOp::Neg].map(|op| {
                let args = if op == CheckedOp::Neg { 1 } else { 2 };
                Arc::new(ScalarUDF::new_from_impl(CheckedArith { op, signature: Signature::any(args, Volatility::Immutable) }))
            })
        });
        all[self as usize].clone()
    }
}

/// Integer `+`, `-`, `*` or negation failing with 22003 on overflow.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CheckedArith {
    op: CheckedOp,
    signature: Signature,
}

impl CheckedArith {
    /// The op `f` runs, if `f` is one of these functions.
    pub fn op_of(f: &ScalarFunction) -> Option<CheckedOp> {
        f.func.inner().downcast_ref::<CheckedArith>().map(|c| c.op)
    }
}

impl ScalarUDFImpl for CheckedArith {
    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        args.first().cloned().ok_or_else(|| to_df(TarnError::internal(format!("{} given no arguments", self.op.name()))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let ty = args.return_field.data_type().clone();
        let datums = args
            .args
            .iter()
            .map(|a| -> Result<Box<dyn Datum>> {
                Ok(match a {
                    ColumnarValue::Array(a) => Box::new(a.clone()),
                    ColumnarValue::Scalar(s) => Box::new(s.to_scalar()?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let result = match (self.op.kernel(), datums.as_slice()) {
            (Some(kernel), [l, r]) => kernel(l.as_ref(), r.as_ref()),
            (None, [v]) => numeric::neg(v.get().0),
            _ => return Err(to_df(TarnError::internal(format!("{} given {} arguments", self.op.name(), datums.len())))),
        }
        .map_err(|e| to_df(kernel_error(e, &ty)))?;
        Ok(if all_scalar { ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?) } else { ColumnarValue::Array(result) })
    }
}

/// An arrow arithmetic kernel's error on operands of type `ty`, as
/// PostgreSQL words it: an overflow is `integer out of range` (22003).
pub fn kernel_error(e: ArrowError, ty: &DataType) -> TarnError {
    match e {
        ArrowError::ArithmeticOverflow(_) => out_of_range(ty),
        other => TarnError::from(datafusion::error::DataFusionError::from(other)),
    }
}

/// PostgreSQL's error for an integer result that does not fit its type.
fn out_of_range(ty: &DataType) -> TarnError {
    let name = match ty {
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        _ => "value",
    };
    TarnError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, format!("{name} out of range"))
}

/// DataFusion's optimizer with [`CheckedIntegerArithmetic`] first.
pub fn optimizer() -> Optimizer {
    let mut rules: Vec<Arc<dyn OptimizerRule + Send + Sync>> = vec![Arc::new(CheckedIntegerArithmetic)];
    rules.extend(Optimizer::new().rules);
    Optimizer::with_rules(rules)
}

/// The optimizer rule: see the module documentation.
#[derive(Debug, Default)]
pub struct CheckedIntegerArithmetic;

impl OptimizerRule for CheckedIntegerArithmetic {
    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        // The expressions of a node read its inputs' columns (both sides',
        // for a join). A leaf (VALUES) has constants and parameters only.
        let schema = match plan.inputs().as_slice() {
            [] => DFSchema::empty(),
            [one] => one.schema().as_ref().clone(),
            [left, right] => match left.schema().join(right.schema()) {
                Ok(both) => both,
                Err(_) => return Ok(Transformed::no(plan)),
            },
            _ => return Ok(Transformed::no(plan)),
        };
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|e| {
            let saved = names.save(&e);
            let checked = e.transform_up(|e| Ok(checked(e, &schema)))?;
            Ok(if checked.transformed { checked.update_data(|e| saved.restore(e)) } else { checked })
        })
    }
}

/// `e` as a checked function, if it is integer arithmetic.
pub(crate) fn checked(e: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let int_type = |e: &Expr| e.get_type(schema).ok().filter(|t| matches!(t, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64));
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply)
                && let Some(ty) = int_type(&left)
                && right.get_type(schema).is_ok_and(|r| r == ty) =>
        {
            let op = match op {
                Operator::Plus => CheckedOp::Add,
                Operator::Minus => CheckedOp::Sub,
                _ => CheckedOp::Mul,
            };
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(op.udf(), vec![*left, *right])))
        }
        Expr::Negative(inner) if int_type(&inner).is_some() => {
            Transformed::yes(Expr::ScalarFunction(ScalarFunction::new_udf(CheckedOp::Neg.udf(), vec![*inner])))
        }
        other => Transformed::no(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::prelude::{col, lit};

    /// Only integer `+ - *` and negation with operands of one type become
    /// checked functions; the rest stays as DataFusion planned it.
    #[test]
    fn only_integer_arithmetic_is_checked() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Int16, true),
            Field::new("b", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
        ]);
        let schema = DFSchema::try_from(schema).unwrap();
        let is_checked = |e: Expr| matches!(checked(e, &schema).data, Expr::ScalarFunction(f) if CheckedArith::op_of(&f).is_some());
        assert!(is_checked(col("s") + col("s")));
        assert!(is_checked(col("b") * lit(7i64)));
        assert!(is_checked(lit(1i64) - col("b")));
        assert!(is_checked(Expr::Negative(Box::new(col("s")))));
        assert!(!is_checked(col("f") * col("f")));
        assert!(!is_checked(Expr::Negative(Box::new(col("f")))));
        assert!(!is_checked(col("b") / lit(2i64)));
        assert!(!is_checked(col("b").eq(lit(2i64))));
        // Mixed types are coerced before this rule runs; left alone here.
        assert!(!is_checked(col("s") + col("b")));
    }
}
