//! DDL on storage: creating, dropping, renaming and altering tables, and the
//! view definitions the catalog keeps. Each statement is one atomic catalog
//! commit (brief invariant 6); Lance-side changes are made so that a crash
//! on either side of that commit leaves a state startup can finish or undo.

use std::sync::Arc;

use tracing::{info, warn};

use super::catalog::{TableDef, ViewDef};
use super::table::Table;
use super::version::TableVersion;
use super::{NewTable, Storage, table_dir};
use crate::error::{Result, TarnError, sqlstate};

impl Storage {
    /// Create a table durably. Returns false if it existed and `if_not_exists`.
    pub async fn create_table(&self, new: NewTable, if_not_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        if let Err(e) = catalog.check_name_free(&new.schema, &new.name) {
            return if if_not_exists { Ok(false) } else { Err(e) };
        }
        let id = catalog.allocate_id();
        let def = TableDef {
            id,
            schema: new.schema,
            name: new.name,
            columns: new.columns,
            primary_key: new.primary_key,
            kind: new.kind,
            indexes: vec![],
            pending_renames: vec![],
        };
        catalog.commit(|o| o.tables.push(def.clone()))?;
        let tdir = table_dir(&self.dir, id, def.kind);
        let table = Arc::new(Table::open(def.clone(), tdir, None)?.0);
        self.publish(|state| {
            state.tables.insert(id, Arc::new(TableVersion::default()));
        });
        self.tables.write().unwrap().insert((def.schema.clone(), def.name.clone()), table);
        info!(table = %def.name, id, "table created");
        Ok(true)
    }

    /// Drop a table durably. Returns false if it was absent and `if_exists`.
    pub async fn drop_table(&self, schema: &str, name: &str, if_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        let Some(def) = catalog.find(schema, name).cloned() else {
            if catalog.find_view(schema, name).is_some() {
                return Err(TarnError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a table"))
                    .with_hint("Use DROP VIEW to remove a view."));
            }
            if if_exists {
                return Ok(false);
            }
            return Err(TarnError::undefined_table(name));
        };
        check_no_dependent_views(catalog.views(), schema, name, &format!("drop table {name}"))?;
        // Wait for commits and flushes in progress on it.
        let table = self.table(schema, name);
        let _writing = match &table {
            Some(t) => Some(t.write_lock.clone().lock_owned().await),
            None => None,
        };
        let _flushing = match &table {
            Some(t) => Some(t.flush_lock.lock().await),
            None => None,
        };
        self.settle().await;
        catalog.commit(|o| o.tables.retain(|t| t.id != def.id))?;
        self.tables.write().unwrap().remove(&(schema.to_string(), name.to_string()));
        self.publish(|state| {
            state.tables.remove(&def.id);
        });
        if let Some(t) = &table {
            // The catalog no longer names it, so its files are garbage even
            // if removing them fails now; startup removes orphans again.
            if let Err(e) = t.remove_files() {
                warn!(table = name, error = %e, "could not remove dropped table's files");
            }
        }
        info!(table = name, id = def.id, "table dropped");
        Ok(true)
    }

    /// Views by name (what the engine plans when a query names one).
    pub fn view(&self, schema: &str, name: &str) -> Option<ViewDef> {
        self.views.read().unwrap().get(&(schema.to_string(), name.to_string())).cloned()
    }

    /// `CREATE SCHEMA`. Returns false if it existed and `if_not_exists`.
    pub async fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        if catalog.schema_exists(name) || name == "pg_catalog" || name == "information_schema" {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TarnError::new(sqlstate::DUPLICATE_SCHEMA, format!("schema \"{name}\" already exists")));
        }
        if name.starts_with("pg_") {
            return Err(TarnError::new(sqlstate::RESERVED_NAME, format!("unacceptable schema name \"{name}\""))
                .with_detail("The prefix \"pg_\" is reserved for system schemas."));
        }
        let id = catalog.allocate_id();
        catalog.commit(|o| o.schemas.push(super::catalog::SchemaDef { id, name: name.to_string() }))?;
        self.schemas.write().unwrap().push(super::catalog::SchemaDef { id, name: name.to_string() });
        super::catalog::bump_generation();
        info!(schema = name, id, "schema created");
        Ok(true)
    }

    /// `DROP SCHEMA`: refused while it holds tables or views, unless `cascade`,
    /// which drops them first (views, then tables), each durably.
    pub async fn drop_schema(&self, name: &str, if_exists: bool, cascade: bool) -> Result<bool> {
        let (views, tables) = {
            let catalog = self.catalog.lock().await;
            if !catalog.schemas().iter().any(|s| s.name == name) {
                if name == crate::engine::PUBLIC || name == "pg_catalog" || name == "information_schema" {
                    return Err(TarnError::new(sqlstate::DEPENDENT_OBJECTS_STILL_EXIST, format!("cannot drop schema {name} because Tarn needs it")));
                }
                if if_exists {
                    return Ok(false);
                }
                return Err(TarnError::new(sqlstate::INVALID_SCHEMA_NAME, format!("schema \"{name}\" does not exist")));
            }
            let views: Vec<String> = catalog.views().iter().filter(|v| v.schema == name).map(|v| v.name.clone()).collect();
            let tables: Vec<String> = catalog.tables().iter().filter(|t| t.schema == name).map(|t| t.name.clone()).collect();
            (views, tables)
        };
        if !cascade && !(views.is_empty() && tables.is_empty()) {
            let first = views.first().map(|v| format!("view {name}.{v}")).or_else(|| tables.first().map(|t| format!("table {name}.{t}")));
            return Err(TarnError::new(sqlstate::DEPENDENT_OBJECTS_STILL_EXIST, format!("cannot drop schema {name} because other objects depend on it"))
                .with_detail(format!("{} depends on schema {name}", first.unwrap_or_default()))
                .with_hint("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        for v in views {
            self.drop_view(name, &v, true).await?;
        }
        for t in tables {
            self.drop_table(name, &t, true).await?;
        }
        let mut catalog = self.catalog.lock().await;
        catalog.commit(|o| o.schemas.retain(|s| s.name != name))?;
        self.schemas.write().unwrap().retain(|s| s.name != name);
        super::catalog::bump_generation();
        info!(schema = name, "schema dropped");
        Ok(true)
    }

    /// Schemas made by CREATE SCHEMA (not `public`).
    pub fn schemas(&self) -> Vec<super::catalog::SchemaDef> {
        self.schemas.read().unwrap().clone()
    }

    pub fn schema_exists(&self, name: &str) -> bool {
        name == crate::engine::PUBLIC || self.schemas.read().unwrap().iter().any(|s| s.name == name)
    }

    /// Every table and view definition, as the catalogs (`pg_class` …) show them.
    pub fn definitions(&self) -> (Vec<TableDef>, Vec<ViewDef>) {
        let tables = self.tables.read().unwrap().values().map(|t| t.def.clone()).collect();
        let views = self.views.read().unwrap().values().cloned().collect();
        (tables, views)
    }

    pub fn view_names(&self, schema: &str) -> Vec<String> {
        self.views.read().unwrap().keys().filter(|(s, _)| s == schema).map(|(_, n)| n.clone()).collect()
    }

    /// Create (or with `or_replace`, replace) a view durably. The engine has
    /// planned `view.sql` already.
    pub async fn create_view(&self, mut view: ViewDef, or_replace: bool, if_not_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        let existing = catalog.find_view(&view.schema, &view.name).cloned();
        // A replaced view keeps its id (and so its oid), as in PostgreSQL.
        view.id = match &existing {
            Some(old) => old.id,
            None => catalog.allocate_id(),
        };
        match existing {
            Some(_) if if_not_exists => return Ok(false),
            Some(old) if or_replace => {
                // PostgreSQL: the new query must keep the old columns, in order.
                if view.columns.len() < old.columns.len() || view.columns[..old.columns.len()] != old.columns[..] {
                    return Err(TarnError::new(
                        sqlstate::INVALID_TABLE_DEFINITION,
                        "cannot drop or rename columns of a view with CREATE OR REPLACE VIEW",
                    ));
                }
            }
            _ => {
                if if_not_exists && catalog.find(&view.schema, &view.name).is_some() {
                    return Ok(false);
                }
                catalog.check_name_free(&view.schema, &view.name)?;
            }
        }
        catalog.commit(|o| {
            o.views.retain(|v| !(v.schema == view.schema && v.name == view.name));
            o.views.push(view.clone());
        })?;
        self.views.write().unwrap().insert((view.schema.clone(), view.name.clone()), view);
        Ok(true)
    }

    pub async fn drop_view(&self, schema: &str, name: &str, if_exists: bool) -> Result<bool> {
        let mut catalog = self.catalog.lock().await;
        if catalog.find_view(schema, name).is_none() {
            if if_exists {
                return Ok(false);
            }
            if catalog.find(schema, name).is_some() {
                return Err(TarnError::new(sqlstate::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a view")));
            }
            return Err(TarnError::new(sqlstate::UNDEFINED_TABLE, format!("view \"{name}\" does not exist")));
        }
        check_no_dependent_views(catalog.views(), schema, name, &format!("drop view {name}"))?;
        catalog.commit(|o| o.views.retain(|v| !(v.schema == schema && v.name == name)))?;
        self.views.write().unwrap().remove(&(schema.to_string(), name.to_string()));
        Ok(true)
    }

    /// `ALTER TABLE … RENAME TO` / `ALTER VIEW … RENAME TO`.
    pub async fn rename_relation(&self, schema: &str, name: &str, to: &str, if_exists: bool) -> Result<()> {
        let mut catalog = self.catalog.lock().await;
        if let Some(view) = catalog.find_view(schema, name).cloned() {
            catalog.check_name_free(schema, to)?;
            check_no_dependent_views(catalog.views(), schema, name, &format!("rename view {name}"))?;
            let renamed = ViewDef { name: to.to_string(), ..view };
            catalog.commit(|o| {
                o.views.retain(|v| !(v.schema == schema && v.name == name));
                o.views.push(renamed.clone());
            })?;
            let mut views = self.views.write().unwrap();
            views.remove(&(schema.to_string(), name.to_string()));
            views.insert((schema.to_string(), to.to_string()), renamed);
            return Ok(());
        }
        let Some(def) = catalog.find(schema, name).cloned() else {
            if if_exists {
                return Ok(());
            }
            return Err(TarnError::undefined_table(name));
        };
        catalog.check_name_free(schema, to)?;
        check_no_dependent_views(catalog.views(), schema, name, &format!("rename table {name}"))?;
        let table = self.table(schema, name).ok_or_else(|| TarnError::undefined_table(name))?;
        self.redefine_table(&mut catalog, &table, TableDef { name: to.to_string(), ..def }).await?;
        info!(from = name, to, "table renamed");
        Ok(())
    }
}

impl Storage {
    /// Commit a new definition of `table` with the same columns (a rename,
    /// an index added or dropped) and install it.
    pub(super) async fn redefine_table(&self, catalog: &mut super::catalog::Catalog, table: &Table, def: TableDef) -> Result<Arc<Table>> {
        let _writing = table.write_lock.clone().lock_owned().await;
        self.settle().await;
        let same_columns: Vec<Option<usize>> = (0..def.columns.len()).map(Some).collect();
        let new_table = Arc::new(table.redefine(def.clone(), &same_columns)?);
        catalog.commit(|o| o.replace_table(def.clone()))?;
        let mut tables = self.tables.write().unwrap();
        tables.remove(&(table.def.schema.clone(), table.def.name.clone()));
        tables.insert((def.schema.clone(), def.name.clone()), new_table.clone());
        Ok(new_table)
    }
}

/// Dropping or renaming a relation a view reads would break the view:
/// PostgreSQL refuses with 2BP01.
/// `what` names the action and relation for the message (`drop table t`).
pub(super) fn check_no_dependent_views(views: &[ViewDef], schema: &str, name: &str, what: &str) -> Result<()> {
    for v in views {
        if v.schema == schema && v.name == name {
            continue;
        }
        if view_references(v).iter().any(|(s, n)| s == schema && n == name) {
            // Unlike PostgreSQL, a view keeps its query as text, so even a
            // rename would break it.
            return Err(TarnError::new(
                sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
                format!("cannot {what} because other objects depend on it"),
            )
            .with_detail(format!("view {} depends on {name}", v.name))
            .with_hint("Drop the dependent views first."));
        }
    }
    Ok(())
}

/// The (schema, name) of every relation a view's query names.
fn view_references(view: &ViewDef) -> Vec<(String, String)> {
    let Ok(mut stmts) = datafusion::sql::parser::DFParser::parse_sql_with_dialect(
        &view.sql,
        &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
    ) else {
        warn!(view = %view.name, "stored view definition no longer parses");
        return vec![];
    };
    let Some(stmt) = stmts.pop_front() else { return vec![] };
    let Ok((refs, _ctes)) = datafusion::sql::resolve::resolve_table_references(&stmt, true) else { return vec![] };
    refs.iter()
        .map(|r| (r.schema().unwrap_or(crate::engine::PUBLIC).to_string(), r.table().to_string()))
        .collect()
}
