-- workload.sql: an sqlite3 workload for run-real-programs.sh: 100k rows inserted, indexed,
-- queried, updated, deleted, vacuumed and checked. Deterministic output.
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, payload BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
INSERT INTO t SELECT x, 'name' || (x * 7919 % 100003), x % 97, (x * 31 % 1000) / 8.0,
                     zeroblob(x % 200) FROM c;
CREATE INDEX t_name ON t(name);
CREATE INDEX t_grp_val ON t(grp, val);
CREATE TABLE g(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 96)
INSERT INTO g SELECT x, printf('group-%03d', x) FROM c;
SELECT count(*), sum(val), min(name), max(name), sum(length(payload)) FROM t;
SELECT grp, count(*), round(sum(val), 3), min(name) FROM t GROUP BY grp ORDER BY grp LIMIT 12;
SELECT name, id FROM t WHERE name LIKE 'name999%' ORDER BY name LIMIT 10;
SELECT g.label, count(*) FROM t JOIN g USING (grp) WHERE t.val > 100 GROUP BY g.label
  ORDER BY count(*) DESC, g.label LIMIT 5;
SELECT id, name FROM t ORDER BY val DESC, name LIMIT 5;
SELECT count(DISTINCT name), count(DISTINCT grp) FROM t;
UPDATE t SET val = val * 2, name = name || '-u' WHERE grp < 10;
DELETE FROM t WHERE id % 3 = 0;
VACUUM;
SELECT count(*), round(sum(val), 3), sum(length(name)) FROM t;
SELECT group_concat(id) FROM (SELECT id FROM t WHERE grp = 5 ORDER BY id LIMIT 20);
PRAGMA integrity_check;
