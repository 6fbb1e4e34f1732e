-- The table postgres.sql reads, loaded once per scale by scripts/bench in single-user mode
-- (ROWS is replaced by the row count). Values come from integer hashing, so every load builds
-- the same table.
CREATE TABLE account(id integer PRIMARY KEY, branch integer, balance bigint, note text);

INSERT INTO account
  SELECT g, 1 + g % 97, (g::bigint * 2654435761) % 1000003 - 500000,
         md5(g::text) || repeat('x', g % 40)
  FROM generate_series(1, ROWS) g;

VACUUM ANALYZE account;
