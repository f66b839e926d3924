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

/// Register Tarn's functions, replacing DataFusion's of the same name.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Version { signature: Signature::exact(vec![], Volatility::Stable) }));
    super::ids::register(ctx);
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
