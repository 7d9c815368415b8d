-- W1 uniform: member -> random other member, amount 1. pgbench -D members=N -D first_member=..
-- -D base=.. -D n=0 (n counts this client's transfers: ids are unique per run).
\set n :n + 1
\set a random(0, :members - 1)
\set b random(0, :members - 2)
\if :b >= :a
\set b :b + 1
\endif
\set id :base + :client_id * 1000000000 + :n
\set d :first_member + :a
\set c :first_member + :b
SELECT transfer(:id, :d, :c, 1, 3);
