-- W3 earn/redeem: earn_permille of the operations earn (issuer -> member, 1 point, code 1), the
-- rest redeem (member -> issuer, code 2) 1 point, except fail_permille of the redeems, which
-- ask for :overdraw (more than any member holds) and are refused (result 9, exceeds_credits).
\set n :n + 1
\set id :base + :client_id * 1000000000 + :n
\set m :first_member + random(0, :members - 1)
\set r random(1, 1000)
\if :r <= :earn_permille
SELECT transfer(:id, 1, :m, 1, 1);
\else
\set f random(1, 1000)
\if :f <= :fail_permille
SELECT transfer(:id, :m, 1, :overdraw, 2);
\else
SELECT transfer(:id, :m, 1, 1, 2);
\endif
\endif
