-- W4 two-phase: member -> random other member pending (amount 1), then in a second transaction
-- post it (post_permille of them) or void it. One script run is one two-phase transfer: its
-- latency covers both commits.
\set n :n + 2
\set id :base + :client_id * 1000000000 + :n
\set a random(0, :members - 1)
\set b random(0, :members - 2)
\if :b >= :a
\set b :b + 1
\endif
\set d :first_member + :a
\set c :first_member + :b
\set finish :id + 1
\set post random(1, 1000) <= :post_permille
SELECT pending_create(:id, :d, :c, 1, 3);
SELECT pending_finish(:finish, :id, :post);
