-- An in-memory database for scripts/bench: inserts, an index built after them, a join, group by,
-- order by, an update and a delete. @n (rows) is set by scripts/bench with -cmd ".parameter set".
-- Rows come from recursive CTEs and integer hashing, so every run builds the same database.
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city TEXT, tier INTEGER);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL,
                    note TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n / 10)
INSERT INTO customer
  SELECT x, 'customer-' || x || '-' || hex(x * 2654435761 % 4294967296),
         'city' || (x * 40503 % 97), x * 7 % 5 FROM c;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < @n)
INSERT INTO orders
  SELECT x, 1 + (x * 2654435761 % 4294967296) % (@n / 10), 'item' || (x * 48271 % 2003),
         1 + x * 16807 % 9, (x * 69621 % 100000) / 100.0,
         printf('%.*c', 10 + x % 90, 'x') FROM c;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_item ON orders(item, qty);
SELECT count(*), sum(qty), round(sum(qty * price), 2) FROM orders;
SELECT c.city, count(*), sum(o.qty), round(avg(o.price), 4)
  FROM orders o JOIN customer c ON c.id = o.customer
  GROUP BY c.city ORDER BY 3 DESC, 1 LIMIT 10;
SELECT c.tier, count(DISTINCT o.item), max(length(o.note)), min(c.name)
  FROM customer c JOIN orders o ON o.customer = c.id
  GROUP BY c.tier ORDER BY c.tier;
SELECT item, group_concat(DISTINCT qty), count(*) FROM orders
  WHERE item IN (SELECT item FROM orders GROUP BY item ORDER BY count(*) DESC, item LIMIT 5)
  GROUP BY item ORDER BY item;
UPDATE orders SET note = note || upper(substr(item, 1, 4)) WHERE qty > 5;
DELETE FROM orders WHERE price < 10;
SELECT count(*), sum(length(note)) FROM orders;
SELECT customer, sum(qty) AS total FROM orders GROUP BY customer ORDER BY total DESC, customer
  LIMIT 5;
