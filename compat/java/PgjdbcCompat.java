// pgjdbc (Debian's libpostgresql-jdbc-java) against every server named in
// COMPAT_TARGETS: typed parameters and results, the switch to a named
// statement and binary results after prepareThreshold executions (default 5,
// and 1), fetch sizes (portal row limits), NULLs, empty results, errors.
// Prints one line per check and closes with "pgjdbc: N passed, N failed".
import java.math.BigDecimal;
import java.sql.*;
import java.time.*;
import java.util.*;

public class PgjdbcCompat {
    static int passed = 0, failed = 0, knownGaps = 0;
    static final List<String> GAPS = loadGaps();

    // compat/known-gaps.txt lines "pgjdbc:<glob>": checks Tarn is known to fail
    // yet. A listed check that passes counts as a failure, so the list shrinks.
    static List<String> loadGaps() {
        List<String> out = new ArrayList<>();
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of(System.getenv("COMPAT_DIR"), "known-gaps.txt"))) {
                line = line.split("#", 2)[0].trim();
                if (line.startsWith("pgjdbc:")) out.add(line.substring(7).trim());
            }
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
        return out;
    }

    static boolean isGap(String check) {
        if (!check.startsWith("tarn")) return false;
        for (String g : GAPS) {
            String re = java.util.regex.Pattern.quote(g).replace("*", "\\E.*\\Q");
            if (check.matches(re)) return true;
        }
        return false;
    }

    interface Check { void run(Connection c) throws Exception; }

    static void check(String target, String name, String url, Check body) {
        String check = target + " " + name;
        boolean gap = isGap(check);
        try (Connection c = DriverManager.getConnection(url)) {
            body.run(c);
            if (gap) {
                failed++;
                System.out.println("XPASS " + check + ": listed in known-gaps.txt but passes; remove the line");
            } else {
                passed++;
                System.out.println("ok   " + check);
            }
        } catch (Throwable e) {
            if (gap) {
                knownGaps++;
                System.out.println("gap  " + check + ": " + e);
            } else {
                failed++;
                System.out.println("FAIL " + check + ": " + e);
            }
        }
    }

    static void eq(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    public static void main(String[] args) throws Exception {
        for (String item : System.getenv("COMPAT_TARGETS").split(",")) {
            String[] kv = item.split("=", 2);
            String[] a = kv[1].split(":");
            String base = "jdbc:postgresql://" + a[0] + ":" + a[1] + "/" + a[3] + "?user=" + a[2];
            for (String threshold : new String[] {"5", "1"}) {
                String url = base + "&prepareThreshold=" + threshold;
                String t = kv[0] + "[prepareThreshold=" + threshold + "]";
                String tbl = "jdbc_" + kv[0] + "_" + threshold;
                check(t, "typed round trip", url, c -> typedRoundTrip(c, tbl));
                check(t, "prepared x8 switches to binary", url, c -> preparedRepeated(c, tbl));
                check(t, "numeric literal", url, c -> numericLiteral(c));
                check(t, "fetch size", url, c -> fetchSize(c));
                check(t, "errors and recovery", url, c -> errors(c, tbl));
            }
            check(kv[0], "DatabaseMetaData", base, c -> metaData(c, "jdbc_meta_" + kv[0]));
        }
        System.out.println("pgjdbc: known gaps " + knownGaps);
        System.out.println("pgjdbc: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    // DatabaseMetaData as DBeaver-style tools browse: schemas, tables,
    // columns (types, nullability, defaults), primary keys, indexes, imported keys.
    static void metaData(Connection c, String tbl) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + tbl);
            s.execute("CREATE TABLE " + tbl + " (id integer PRIMARY KEY, name varchar(30) NOT NULL DEFAULT 'n', amount numeric(12,3), at timestamptz)");
            s.execute("CREATE INDEX " + tbl + "_name_idx ON " + tbl + " (name)");
        }
        DatabaseMetaData md = c.getMetaData();
        eq(15, md.getDatabaseMajorVersion(), "major version");
        Set<String> schemas = new HashSet<>();
        try (ResultSet r = md.getSchemas()) { while (r.next()) schemas.add(r.getString("TABLE_SCHEM")); }
        if (!schemas.containsAll(List.of("public", "pg_catalog", "information_schema"))) throw new AssertionError("schemas: " + schemas);
        List<String> tables = new ArrayList<>();
        try (ResultSet r = md.getTables(null, "public", tbl, new String[] {"TABLE"})) {
            while (r.next()) tables.add(r.getString("TABLE_NAME") + ":" + r.getString("TABLE_TYPE"));
        }
        eq(List.of(tbl + ":TABLE"), tables, "getTables");
        List<String> cols = new ArrayList<>();
        try (ResultSet r = md.getColumns(null, "public", tbl, "%")) {
            while (r.next()) {
                cols.add(r.getString("COLUMN_NAME") + " " + r.getString("TYPE_NAME") + " " + r.getInt("DATA_TYPE") + " size=" + r.getInt("COLUMN_SIZE")
                        + " digits=" + r.getInt("DECIMAL_DIGITS") + " nullable=" + r.getInt("NULLABLE") + " default=" + r.getString("COLUMN_DEF")
                        + " pos=" + r.getInt("ORDINAL_POSITION"));
            }
        }
        eq(List.of(
                "id int4 4 size=10 digits=0 nullable=0 default=null pos=1",
                "name varchar 12 size=30 digits=0 nullable=0 default='n'::character varying pos=2",
                "amount numeric 2 size=12 digits=3 nullable=1 default=null pos=3",
                "at timestamptz 93 size=35 digits=6 nullable=1 default=null pos=4"), cols, "getColumns");
        List<String> pk = new ArrayList<>();
        try (ResultSet r = md.getPrimaryKeys(null, "public", tbl)) {
            while (r.next()) pk.add(r.getString("COLUMN_NAME") + ":" + r.getInt("KEY_SEQ") + ":" + r.getString("PK_NAME"));
        }
        eq(List.of("id:1:" + tbl + "_pkey"), pk, "getPrimaryKeys");
        List<String> idx = new ArrayList<>();
        try (ResultSet r = md.getIndexInfo(null, "public", tbl, false, false)) {
            while (r.next()) idx.add(r.getString("INDEX_NAME") + ":" + r.getString("COLUMN_NAME") + ":unique=" + !r.getBoolean("NON_UNIQUE"));
        }
        eq(List.of(tbl + "_pkey:id:unique=true", tbl + "_name_idx:name:unique=false"), idx, "getIndexInfo");
        try (ResultSet r = md.getImportedKeys(null, "public", tbl)) {
            if (r.next()) throw new AssertionError("getImportedKeys: a foreign key where there is none");
        }
    }

    static void typedRoundTrip(Connection c, String tbl) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + tbl + "_types");
            s.execute("CREATE TABLE " + tbl + "_types (id int PRIMARY KEY, b boolean, i2 smallint, i8 bigint, f4 real, f8 double precision, "
                    + "n numeric(12,3), t text, vc varchar(10), by bytea, d date, ts timestamp, tstz timestamptz)");
        }
        try (PreparedStatement p = c.prepareStatement("INSERT INTO " + tbl + "_types VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")) {
            for (int i = 0; i < 7; i++) {
                p.setInt(1, i);
                p.setBoolean(2, i % 2 == 0);
                p.setShort(3, (short) (i - 3));
                p.setLong(4, 9_000_000_000L + i);
                p.setFloat(5, 1.5f * i);
                p.setDouble(6, 0.1 * i);
                p.setBigDecimal(7, new BigDecimal(i + ".125"));
                p.setString(8, "row " + i);
                p.setString(9, "v" + i);
                p.setBytes(10, new byte[] {0, (byte) 0xff, (byte) i});
                p.setObject(11, LocalDate.of(2026, 1, 1 + i));
                p.setObject(12, LocalDateTime.of(2026, 1, 2, 3, 4, 5, 250_000_000));
                p.setObject(13, OffsetDateTime.of(2026, 1, 2, 3, 4, 5, 0, ZoneOffset.UTC));
                eq(1, p.executeUpdate(), "insert count");
            }
            for (int k = 1; k <= 13; k++) p.setNull(k, k == 1 ? Types.INTEGER : Types.OTHER);
            p.setInt(1, 99);
            p.setNull(2, Types.BOOLEAN); p.setNull(3, Types.SMALLINT); p.setNull(4, Types.BIGINT); p.setNull(5, Types.REAL);
            p.setNull(6, Types.DOUBLE); p.setNull(7, Types.NUMERIC); p.setNull(8, Types.VARCHAR); p.setNull(9, Types.VARCHAR);
            p.setNull(10, Types.BINARY); p.setNull(11, Types.DATE); p.setNull(12, Types.TIMESTAMP); p.setNull(13, Types.TIMESTAMP_WITH_TIMEZONE);
            p.executeUpdate();
        }
        try (PreparedStatement q = c.prepareStatement("SELECT * FROM " + tbl + "_types WHERE id = ?")) {
            for (int round = 0; round < 7; round++) {
                q.setInt(1, round);
                try (ResultSet r = q.executeQuery()) {
                    if (!r.next()) throw new AssertionError("no row " + round);
                    eq(round % 2 == 0, r.getBoolean("b"), "bool");
                    eq((short) (round - 3), r.getShort("i2"), "int2");
                    eq(9_000_000_000L + round, r.getLong("i8"), "int8");
                    eq(1.5f * round, r.getFloat("f4"), "float4");
                    eq(0.1 * round, r.getDouble("f8"), "float8");
                    eq(new BigDecimal(round + ".125"), r.getBigDecimal("n"), "numeric");
                    eq("row " + round, r.getString("t"), "text");
                    eq("v" + round, r.getString("vc"), "varchar");
                    eq(Arrays.toString(new byte[] {0, (byte) 0xff, (byte) round}), Arrays.toString(r.getBytes("by")), "bytea");
                    eq(LocalDate.of(2026, 1, 1 + round), r.getObject("d", LocalDate.class), "date");
                    eq(LocalDateTime.of(2026, 1, 2, 3, 4, 5, 250_000_000), r.getObject("ts", LocalDateTime.class), "timestamp");
                    eq(OffsetDateTime.of(2026, 1, 2, 3, 4, 5, 0, ZoneOffset.UTC), r.getObject("tstz", OffsetDateTime.class), "timestamptz");
                    ResultSetMetaData md = r.getMetaData();
                    eq(3, md.getScale(7), "numeric scale from typmod");
                    eq(12, md.getPrecision(7), "numeric precision from typmod");
                    eq("varchar", md.getColumnTypeName(9), "varchar type name");
                    eq(10, md.getColumnDisplaySize(9), "varchar display size");
                }
            }
            q.setInt(1, 99);
            try (ResultSet r = q.executeQuery()) {
                r.next();
                for (int k = 2; k <= 13; k++) {
                    r.getObject(k);
                    if (!r.wasNull()) throw new AssertionError("column " + k + " not NULL");
                }
            }
        }
    }

    static void preparedRepeated(Connection c, String tbl) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + tbl + "_prep");
            s.execute("CREATE TABLE " + tbl + "_prep (a int PRIMARY KEY, b numeric(10,2), c text)");
            s.execute("INSERT INTO " + tbl + "_prep SELECT g, g * 1.5, 'c' || g FROM generate_series(1, 20) AS t(g)");
        }
        try (PreparedStatement q = c.prepareStatement("SELECT a, b, c FROM " + tbl + "_prep WHERE a = ?")) {
            for (int i = 1; i <= 8; i++) {
                q.setInt(1, i);
                try (ResultSet r = q.executeQuery()) {
                    if (!r.next()) throw new AssertionError("no row " + i);
                    eq(i, r.getInt(1), "int4 (binary after the threshold)");
                    eq(new BigDecimal(i * 1.5).setScale(2), r.getBigDecimal(2), "numeric (binary after the threshold)");
                    eq("c" + i, r.getString(3), "text");
                    if (r.next()) throw new AssertionError("two rows");
                }
            }
        }
    }

    static void numericLiteral(Connection c) throws Exception {
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT now(), 1.5::numeric")) {
            r.next();
            if (r.getTimestamp(1) == null) throw new AssertionError("now() is null");
            eq(new BigDecimal("1.5"), r.getBigDecimal(2), "numeric literal");
        }
    }

    static void fetchSize(Connection c) throws Exception {
        c.setAutoCommit(false); // pgjdbc uses portals with row limits only inside a transaction
        try (Statement s = c.createStatement()) {
            s.setFetchSize(100);
            try (ResultSet r = s.executeQuery("SELECT g FROM generate_series(1, 2500) AS t(g) ORDER BY g")) {
                long n = 0, sum = 0;
                while (r.next()) { n++; sum += r.getLong(1); }
                eq(2500L, n, "rows");
                eq(2500L * 2501 / 2, sum, "sum");
            }
        }
        c.commit();
        c.setAutoCommit(true);
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT 1 WHERE false")) {
            eq(false, r.next(), "empty result");
        }
    }

    static void errors(Connection c, String tbl) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute("DROP TABLE IF EXISTS " + tbl + "_err");
            s.execute("CREATE TABLE " + tbl + "_err (id int PRIMARY KEY, v text NOT NULL)");
            s.execute("INSERT INTO " + tbl + "_err VALUES (1, 'a')");
        }
        String[][] bad = {
            {"INSERT INTO " + tbl + "_err VALUES (1, 'b')", "23505"},
            {"INSERT INTO " + tbl + "_err VALUES (2, NULL)", "23502"},
            {"SELECT * FROM jdbc_missing", "42P01"},
            {"SELECT 1/0", "22012"},
            {"SELEC 1", "42601"},
        };
        for (String[] b : bad) {
            try (Statement s = c.createStatement()) {
                s.execute(b[0]);
                throw new AssertionError("no error for " + b[0]);
            } catch (SQLException e) {
                eq(b[1], e.getSQLState(), b[0]);
            }
        }
        try (PreparedStatement p = c.prepareStatement("SELECT count(*) FROM " + tbl + "_err WHERE id > ?")) {
            p.setInt(1, 0);
            try (ResultSet r = p.executeQuery()) { r.next(); eq(1L, r.getLong(1), "count after errors"); }
        }
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            s.execute("INSERT INTO " + tbl + "_err VALUES (5, 'x')");
            try { s.execute("SELECT 1/0"); } catch (SQLException e) { eq("22012", e.getSQLState(), "in block"); }
            try { s.execute("SELECT 1"); throw new AssertionError("no 25P02"); } catch (SQLException e) { eq("25P02", e.getSQLState(), "failed block"); }
        }
        c.rollback();
        c.setAutoCommit(true);
        try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM " + tbl + "_err")) {
            r.next(); eq(1L, r.getLong(1), "rolled back");
        }
    }
}
