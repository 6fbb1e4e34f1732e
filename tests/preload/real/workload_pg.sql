-- After pgbench's transactions (run-real-programs.sh): the bank's books must balance whatever
-- the transactions drew, then queries over a generated table print the same on every run.
SELECT 'history', count(*) FROM pgbench_history;
SELECT 'balanced', (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)
   AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history)
   AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(delta) FROM pgbench_history);
SET work_mem = '64MB';
CREATE TABLE account AS
  SELECT g AS id, 1 + g % 97 AS branch, (g::bigint * 2654435761) % 1000003 - 500000 AS balance,
         md5(g::text) || repeat('x', g % 40) AS note
  FROM generate_series(1, 200000) g;
CREATE INDEX account_branch ON account(branch, balance);
SELECT count(*), sum(total) FROM (SELECT branch, id % 1000 AS k, sum(balance) AS total
                                  FROM account GROUP BY 1, 2) t;
SELECT md5(string_agg(id::text, ',' ORDER BY note, id DESC)) FROM account WHERE id % 3 = 0;
SELECT count(DISTINCT note), count(DISTINCT (id::bigint * 7919) % 50000) FROM account;
SELECT count(*), sum(a.balance - b.balance) FROM account a JOIN account b ON a.id = b.id + 1
  WHERE a.branch <> b.branch;
SELECT sum(length(j::text)) FROM (SELECT jsonb_agg(jsonb_build_object('id', id, 'n', note)) AS j
                                  FROM account WHERE id % 4 = 0 GROUP BY id % 100) t;
SELECT branch, balance, id FROM account WHERE branch = 42 ORDER BY balance DESC, id LIMIT 3;
UPDATE account SET note = upper(note) WHERE id % 7 = 0;
DELETE FROM account WHERE balance < -400000;
VACUUM account;
SELECT count(*), sum(length(note)), md5(string_agg(note, '' ORDER BY id)) FROM account;
