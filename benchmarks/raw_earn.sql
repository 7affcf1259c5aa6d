-- The raw earn: the least a durable "earn points" can cost PostgreSQL - one ledger row and one balance
-- update in one committed transaction. benchmarks/earn_bench.py runs it with pgbench against the same
-- server and database as Treue (separate tables) and compares Treue's earn req/s with its TPS.
--
-- Setup: CREATE TABLE raw_acct(id int PRIMARY KEY, bal bigint NOT NULL DEFAULT 0);
--   INSERT INTO raw_acct SELECT g, 0 FROM generate_series(1, 10000) g;
--   CREATE TABLE raw_ledger(id bigserial PRIMARY KEY, acct int NOT NULL, amount bigint NOT NULL, ts timestamptz DEFAULT now(), ref text);
--   CREATE INDEX ON raw_ledger(acct);
-- Run: pgbench -n -f raw_earn.sql -c 16 -j 2 -T 30 DBNAME
\set a random(1, 10000)
BEGIN;
INSERT INTO raw_ledger(acct, amount, ref) VALUES (:a, 10, 'order');
UPDATE raw_acct SET bal = bal + 10 WHERE id = :a;
END;
