//! Object ids: PostgreSQL's own for built-in objects, and ones derived from
//! Tarn's durable table ids for user objects, so they survive restarts.
//!
//! Each table or view id owns a block of [`STRIDE`] oids starting at
//! `FIRST_USER_OID + id * STRIDE`: the relation, its row type, that type's
//! array type, its primary key index, then its secondary indexes in order.

use crate::storage::catalog::TableDef;
use crate::types::PgType;

/// PostgreSQL's FirstNormalObjectId: user objects start here.
pub const FIRST_USER_OID: u32 = 16384;
const STRIDE: u32 = 64;
const PKEY: u32 = 3;
const FIRST_INDEX: u32 = 4;

pub const PG_CATALOG_NAMESPACE: u32 = 11;
pub const PG_TOAST_NAMESPACE: u32 = 99;
pub const PUBLIC_NAMESPACE: u32 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE: u32 = 13207;
/// The bootstrap superuser (PostgreSQL's oid 10), which owns everything.
pub const BOOTSTRAP_ROLE: u32 = 10;
pub const DATABASE: u32 = 16383;
/// `pg_database_owner`, owner of `public` as in PostgreSQL 15.
pub const DATABASE_OWNER_ROLE: u32 = 6171;

/// Access methods: PostgreSQL's `heap` and `btree`, and Tarn's own (oids
/// below FirstNormalObjectId that PostgreSQL 15 does not use).
pub const AM_HEAP: u32 = 2;
pub const AM_BTREE: u32 = 403;
pub const AM_LANCE: u32 = 16380;
pub const AM_BITMAP: u32 = 16381;

/// `pg_class`'s own oid (PostgreSQL's), the `classoid` of relations.
pub const PG_CLASS: u32 = 1259;
pub const PG_CONSTRAINT: u32 = 2606;

pub fn relation(id: u64) -> u32 {
    FIRST_USER_OID + id as u32 * STRIDE
}

pub fn row_type(id: u64) -> u32 {
    relation(id) + 1
}

pub fn row_array_type(id: u64) -> u32 {
    relation(id) + 2
}

pub fn pkey_index(id: u64) -> u32 {
    relation(id) + PKEY
}

pub fn index(id: u64, position: usize) -> u32 {
    relation(id) + FIRST_INDEX + position as u32
}

/// The primary key's constraint shares its index's oid (they are in
/// different catalogs, as in PostgreSQL where they merely differ).
pub fn pkey_constraint(id: u64) -> u32 {
    pkey_index(id)
}

/// What a user oid names: (table or view id, slot in its block).
pub fn decompose(oid: u32) -> Option<(u64, u32)> {
    let off = oid.checked_sub(FIRST_USER_OID)?;
    Some((u64::from(off / STRIDE), off % STRIDE))
}

/// The secondary index position an oid names, if it names one of `t`'s.
pub fn index_position(t: &TableDef, oid: u32) -> Option<usize> {
    let (id, slot) = decompose(oid)?;
    (id == t.id && slot >= FIRST_INDEX).then(|| (slot - FIRST_INDEX) as usize).filter(|p| *p < t.indexes.len())
}

/// The `pg_type` oid of a column type (arrays by their element).
pub fn type_oid(ty: &PgType) -> u32 {
    ty.wire_type().oid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_do_not_overlap_and_decompose() {
        assert_eq!(relation(1), 16448);
        assert_eq!(decompose(pkey_index(7)), Some((7, PKEY)));
        assert_eq!(decompose(index(7, 2)), Some((7, FIRST_INDEX + 2)));
        assert!(index(7, (STRIDE - FIRST_INDEX - 1) as usize) < relation(8));
        assert_eq!(decompose(100), None);
    }
}
