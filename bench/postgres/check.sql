-- Conservation and consistency after a run; every row is a check, `ok` must be true in each.
-- psql -v members=N -v funding=F -v overdraw=O -At -F '|' -f check.sql
SELECT 'balances sum to zero per ledger', bool_and(s = 0), string_agg(ledger || ':' || s, ',')
  FROM (SELECT ledger, sum(balance) AS s FROM accounts GROUP BY ledger) t;
SELECT 'nothing pending on accounts', sum(debits_pending) = 0 AND sum(credits_pending) = 0,
       sum(debits_pending) || '/' || sum(credits_pending) FROM accounts;
SELECT 'no member below its limit', count(*) = 0, count(*)::text
  FROM accounts WHERE kind = 'member' AND balance - debits_pending < 0;
SELECT 'every balance is the sum of its entries', count(*) = 0, count(*)::text
  FROM accounts a
  LEFT JOIN (SELECT account, sum(delta) AS s FROM (
               SELECT credit_account AS account, amount AS delta FROM ledger_entries
               UNION ALL
               SELECT debit_account, -amount FROM ledger_entries) e GROUP BY account) e
    ON e.account = a.id
  WHERE a.balance <> coalesce(e.s, 0);
SELECT 'no pending transfer left open', count(*) = 0, count(*)::text
  FROM pending_transfers WHERE state = 'pending';
SELECT 'every posted pending transfer has its entry', count(*) = 0, count(*)::text
  FROM pending_transfers p LEFT JOIN ledger_entries e ON e.transfer_id = p.finished_by
  WHERE p.state = 'posted' AND e.transfer_id IS NULL;
SELECT 'only overdrawing redeems were refused', count(*) = 0, count(*)::text
  FROM rejections WHERE amount <> :overdraw OR result <> 9;
SELECT 'no overdrawing transfer went through', count(*) = 0, count(*)::text
  FROM ledger_entries WHERE amount = :overdraw;
