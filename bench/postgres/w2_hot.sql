-- W2 hot account: the ONE issuer account (id 1) -> random member, amount 1 (a campaign).
\set n :n + 1
\set id :base + :client_id * 1000000000 + :n
\set m :first_member + random(0, :members - 1)
SELECT transfer(:id, 1, :m, 1, 3);
