// node-pg against every server in COMPAT_TARGETS: Parse with no parameter
// types (the server infers them), named prepared statements, text results,
// NULLs, empty results, errors and recovery, transactions.
'use strict';
const nodeTest = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const { Client } = require('pg');

const targets = process.env.COMPAT_TARGETS.split(',').map((item) => {
  const [name, addr] = item.split('=');
  const [host, port, user, database] = addr.split(':');
  return { name, host, port: Number(port), user, database };
});

// compat/known-gaps.txt lines "node:<glob>": tests Tarn is known to fail yet.
// Such a test must fail; one that passes fails the run, so the list shrinks.
const gaps = fs.readFileSync(path.join(__dirname, '..', 'known-gaps.txt'), 'utf8').split('\n')
  .map((l) => l.split('#')[0].trim())
  .filter((l) => l.startsWith('node:'))
  .map((l) => new RegExp('^' + l.slice(5).trim().split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'));

function test(name, fn) {
  if (!name.startsWith('tarn') || !gaps.some((g) => g.test(name))) {
    return nodeTest.test(name, fn);
  }
  return nodeTest.test(`${name} (known gap)`, async () => {
    let passed = false;
    try {
      await fn();
      passed = true;
    } catch (e) {
      console.log(`gap: ${name}: ${e.message}`);
    }
    if (passed) throw new Error('listed in known-gaps.txt but passes: remove the line');
  });
}

async function withClient(t, fn) {
  const c = new Client({ host: t.host, port: t.port, user: t.user, database: t.database });
  await c.connect();
  try {
    await fn(c);
  } finally {
    await c.end();
  }
}

for (const t of targets) {
  const tbl = `node_${t.name}`;

  test(`${t.name}: untyped parameters, inferred by the server`, () => withClient(t, async (c) => {
    await c.query(`DROP TABLE IF EXISTS ${tbl}`);
    await c.query(`CREATE TABLE ${tbl} (a int PRIMARY KEY, b text, c double precision, d timestamptz, e boolean, f numeric(8,2), g bigint)`);
    for (let i = 0; i < 6; i++) {
      const r = await c.query(`INSERT INTO ${tbl} (a, b, c, d, e, f, g) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [i, `b${i}`, i / 2, new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), i % 2 === 0, `${i}.25`, 9000000000 + i]);
      assert.equal(r.rowCount, 1);
      assert.equal(r.command, 'INSERT');
    }
    const r = await c.query(`SELECT a, b, c, d, e, f, g FROM ${tbl} WHERE a = $1`, [3]);
    assert.deepEqual(r.rows, [{ a: 3, b: 'b3', c: 1.5, d: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)), e: false, f: '3.25', g: '9000000003' }]);
    assert.deepEqual(r.fields.map((f) => f.dataTypeID), [23, 25, 701, 1184, 16, 1700, 20]);
    const sum = await c.query(`SELECT count(*) AS n, sum(a) AS s FROM ${tbl} WHERE b LIKE $1`, ['b%']);
    assert.deepEqual(sum.rows, [{ n: '6', s: '15' }]);
  }));

  test(`${t.name}: named prepared statement executed many times`, () => withClient(t, async (c) => {
    await c.query(`DROP TABLE IF EXISTS ${tbl}_p`);
    await c.query(`CREATE TABLE ${tbl}_p (a int PRIMARY KEY, c text)`);
    await c.query(`INSERT INTO ${tbl}_p SELECT g, 'c' || g FROM generate_series(1, 10) AS t(g)`);
    for (let i = 1; i <= 10; i++) {
      const r = await c.query({ name: 'q1', text: `SELECT a, c FROM ${tbl}_p WHERE a = $1`, values: [i] });
      assert.deepEqual(r.rows, [{ a: i, c: `c${i}` }]);
    }
    const empty = await c.query({ name: 'q1', text: `SELECT a, c FROM ${tbl}_p WHERE a = $1`, values: [99] });
    assert.deepEqual(empty.rows, []);
    assert.deepEqual(empty.fields.map((f) => f.name), ['a', 'c']);
  }));

  test(`${t.name}: NULLs and arrays`, () => withClient(t, async (c) => {
    const r = await c.query('SELECT $1::text AS a, $2::int AS b, NULL::date AS d', [null, null]);
    assert.deepEqual(r.rows, [{ a: null, b: null, d: null }]);
    const arr = await c.query('SELECT ARRAY[1, 2, NULL]::int[] AS xs, ARRAY[\'a\', \'b c\']::text[] AS ys');
    assert.deepEqual(arr.rows, [{ xs: [1, 2, null], ys: ['a', 'b c'] }]);
  }));

  test(`${t.name}: errors and recovery`, () => withClient(t, async (c) => {
    await c.query(`DROP TABLE IF EXISTS ${tbl}_e`);
    await c.query(`CREATE TABLE ${tbl}_e (a int PRIMARY KEY)`);
    await c.query(`INSERT INTO ${tbl}_e VALUES (1)`);
    await assert.rejects(c.query(`INSERT INTO ${tbl}_e VALUES ($1)`, [1]), { code: '23505' });
    await assert.rejects(c.query('SELECT * FROM node_missing'), { code: '42P01' });
    await assert.rejects(c.query('SELECT $1::int', ['nope']), { code: '22P02' });
    await c.query('BEGIN');
    await assert.rejects(c.query('SELECT 1/0'), { code: '22012' });
    await assert.rejects(c.query('SELECT 1'), { code: '25P02' });
    await c.query('ROLLBACK');
    const r = await c.query(`SELECT count(*)::int AS n FROM ${tbl}_e`);
    assert.deepEqual(r.rows, [{ n: 1 }]);
  }));
}
