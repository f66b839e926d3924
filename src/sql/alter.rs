//! `ALTER TABLE` as parsed → the column changes storage applies.

use datafusion::sql::sqlparser::ast::{self, AlterColumnOperation, AlterTableOperation as Op, Expr, RenameTableNameKind};

use super::ddl::column_def;
use super::{Command, normalize_ident, qualified_name};
use crate::error::{Result, TarnError};
use crate::storage::catalog::ColumnDef;
use crate::types::PgType;

/// One change to a table's columns.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    AddColumn { column: ColumnDef, if_not_exists: bool },
    DropColumn { name: String, if_exists: bool },
    RenameColumn { from: String, to: String },
    SetType { column: String, ty: PgType },
    /// `SET DEFAULT expr` / `DROP DEFAULT` (None).
    SetDefault { column: String, default: Option<String> },
    SetNotNull { column: String, not_null: bool },
}

/// A parsed `ALTER TABLE`: a rename, or column changes applied together.
pub fn alter_table(at: ast::AlterTable) -> Result<Command> {
    let (schema, name) = qualified_name(&at.name)?;
    if let [Op::RenameTable { table_name: RenameTableNameKind::To(to) | RenameTableNameKind::As(to) }] = at.operations.as_slice() {
        let (_, to) = qualified_name(to)?;
        return Ok(Command::Rename { schema, name, to, if_exists: at.if_exists });
    }
    let actions = at.operations.iter().map(|op| action(op, &name)).collect::<Result<Vec<_>>>()?;
    Ok(Command::AlterTable { schema, name, if_exists: at.if_exists, actions })
}

fn action(op: &Op, table: &str) -> Result<AlterAction> {
    Ok(match op {
        Op::AddColumn { if_not_exists, column_def: def, .. } => {
            let (column, primary_key) = column_def(def, table)?;
            if primary_key {
                return Err(TarnError::not_supported("ALTER TABLE … ADD COLUMN … PRIMARY KEY is not supported yet"));
            }
            if column.identity.is_some() {
                return Err(TarnError::not_supported("ALTER TABLE … ADD COLUMN of an identity or serial column is not supported yet"));
            }
            AlterAction::AddColumn { column, if_not_exists: *if_not_exists }
        }
        Op::DropColumn { column_names, if_exists, drop_behavior, .. } => {
            if matches!(drop_behavior, Some(ast::DropBehavior::Cascade)) {
                return Err(TarnError::not_supported("DROP COLUMN … CASCADE is not supported yet"));
            }
            match column_names.as_slice() {
                [c] => AlterAction::DropColumn { name: normalize_ident(c), if_exists: *if_exists },
                _ => return Err(TarnError::syntax("DROP COLUMN takes one column per clause")),
            }
        }
        Op::RenameColumn { old_column_name, new_column_name } => {
            AlterAction::RenameColumn { from: normalize_ident(old_column_name), to: normalize_ident(new_column_name) }
        }
        Op::AlterColumn { column_name, op } => {
            let column = normalize_ident(column_name);
            match op {
                AlterColumnOperation::SetNotNull => AlterAction::SetNotNull { column, not_null: true },
                AlterColumnOperation::DropNotNull => AlterAction::SetNotNull { column, not_null: false },
                AlterColumnOperation::SetDefault { value: Expr::Value(v) } if matches!(v.value, ast::Value::Null) => {
                    AlterAction::SetDefault { column, default: None }
                }
                AlterColumnOperation::SetDefault { value } => AlterAction::SetDefault { column, default: Some(value.to_string()) },
                AlterColumnOperation::DropDefault => AlterAction::SetDefault { column, default: None },
                AlterColumnOperation::SetDataType { using: Some(_), .. } => {
                    return Err(TarnError::not_supported("ALTER COLUMN … TYPE … USING is not supported yet"));
                }
                AlterColumnOperation::SetDataType { data_type, .. } => AlterAction::SetType { column, ty: PgType::from_sql(data_type)? },
                other => return Err(TarnError::not_supported(format!("ALTER COLUMN … {other} is not supported yet"))),
            }
        }
        other => return Err(TarnError::not_supported(format!("ALTER TABLE … {other} is not supported yet"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(sql: &str) -> Result<Vec<AlterAction>> {
        match crate::sql::classify(crate::sql::parse(sql)?.remove(0))? {
            Command::AlterTable { actions, .. } => Ok(actions),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn column_changes_parse() {
        let a = actions("ALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 7, DROP COLUMN IF EXISTS Old, RENAME COLUMN a TO \"B\"").unwrap();
        assert!(matches!(&a[0], AlterAction::AddColumn { column, .. } if column.default.as_deref() == Some("7") && column.not_null));
        assert_eq!(a[1], AlterAction::DropColumn { name: "old".into(), if_exists: true });
        assert_eq!(a[2], AlterAction::RenameColumn { from: "a".into(), to: "B".into() });
        let a = actions("ALTER TABLE t ALTER COLUMN x TYPE bigint, ALTER x SET DEFAULT 1, ALTER x DROP NOT NULL").unwrap();
        assert_eq!(a[0], AlterAction::SetType { column: "x".into(), ty: PgType::Int8 });
        assert_eq!(a[1], AlterAction::SetDefault { column: "x".into(), default: Some("1".into()) });
        assert_eq!(a[2], AlterAction::SetNotNull { column: "x".into(), not_null: false });
    }

    #[test]
    fn unsupported_forms_are_0a000() {
        let code = |sql| actions(sql).unwrap_err().code;
        assert_eq!(code("ALTER TABLE t ALTER COLUMN x TYPE int USING x::int"), crate::error::sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("ALTER TABLE t ADD COLUMN id serial"), crate::error::sqlstate::FEATURE_NOT_SUPPORTED);
        assert_eq!(code("ALTER TABLE t ADD CONSTRAINT c UNIQUE (a)"), crate::error::sqlstate::FEATURE_NOT_SUPPORTED);
    }
}
