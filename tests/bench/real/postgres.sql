-- PostgreSQL's single-user backend (postgres --single -j, where a statement ends at a blank
-- line) reading the table of postgres_load.sql: hash aggregation, sorts, a hash join,
-- distinct counts, string and JSON building, all in memory (work_mem is set on the command
-- line), each in its own memory contexts over malloc. Read-only: every run prints the same.
SELECT count(*), sum(total) FROM (SELECT branch, id % 1000 AS k, sum(balance) AS total
                                  FROM account GROUP BY 1, 2) t;

SELECT md5(string_agg(id::text, ',' ORDER BY note, id DESC)) FROM account WHERE id % 3 = 0;

SELECT count(DISTINCT (id::bigint * 7919) % 500000), count(DISTINCT note) FROM account;

SELECT count(*), sum(a.balance - b.balance) FROM account a JOIN account b ON a.id = b.id + 1
  WHERE a.branch <> b.branch;

SELECT md5(string_agg(x, '' ORDER BY x)) FROM (SELECT repeat(id::text, 1 + id % 50) AS x
                                            FROM account WHERE id % 5 = 0) t;

SELECT sum(length(j::text)) FROM (SELECT jsonb_agg(jsonb_build_object('id', id, 'b', branch,
                                                                       'n', note)) AS j
                                  FROM account WHERE id % 4 = 0 GROUP BY id % 100) t;

SELECT branch, count(*), min(note), max(balance) FROM account GROUP BY branch
  ORDER BY 4 DESC, 1 LIMIT 5;
