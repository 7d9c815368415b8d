-- The PostgreSQL baseline of pointex-bench: the traditional row-locking ledger design.
-- psql -v members=N -v first_member=1000001 -v funding=1000000000 -f schema.sql
--
-- Mirrors PointEx's model (include/pointex/types.hpp): a member account has the flag
-- debits_must_not_exceed_credits (debits posted + pending <= credits posted, i.e.
-- balance - debits_pending >= 0); an issuer account has no flag and goes negative by the points
-- it has outstanding. Per ledger the balances sum to zero (double entry).
--
-- Every transfer is one transaction (a function call in autocommit: one round trip, PostgreSQL's
-- best case) that locks both account rows FOR UPDATE in id order, checks the debit account's
-- limit, moves the amount and records the entry under its unique transfer id. Commits are
-- durable: the cluster runs with fsync = on and synchronous_commit = on.

DROP TABLE IF EXISTS rejections, pending_transfers, ledger_entries, accounts CASCADE;

CREATE TABLE accounts (
  id              bigint  PRIMARY KEY,
  ledger          integer NOT NULL,
  kind            text    NOT NULL CHECK (kind IN ('member', 'issuer')),
  balance         bigint  NOT NULL DEFAULT 0,   -- credits posted - debits posted
  debits_pending  bigint  NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
  credits_pending bigint  NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
  CONSTRAINT member_within_credits CHECK (kind = 'issuer' OR balance - debits_pending >= 0)
);

-- One row per posted transfer (single-phase, or the post of a pending one).
CREATE TABLE ledger_entries (
  transfer_id    bigint  PRIMARY KEY,
  debit_account  bigint  NOT NULL REFERENCES accounts (id),
  credit_account bigint  NOT NULL REFERENCES accounts (id),
  amount         bigint  NOT NULL CHECK (amount > 0),
  ledger         integer NOT NULL,
  code           integer NOT NULL,
  pending_id     bigint,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- W4: reservations, then posted or voided by a second transaction.
CREATE TABLE pending_transfers (
  transfer_id    bigint  PRIMARY KEY,
  debit_account  bigint  NOT NULL REFERENCES accounts (id),
  credit_account bigint  NOT NULL REFERENCES accounts (id),
  amount         bigint  NOT NULL CHECK (amount > 0),
  ledger         integer NOT NULL,
  code           integer NOT NULL,
  state          text    NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
  finished_by    bigint,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- Refused transfers (W3's overdrawing redeems), so that the checks can count them exactly.
CREATE TABLE rejections (
  transfer_id    bigint  PRIMARY KEY,
  debit_account  bigint  NOT NULL,
  credit_account bigint  NOT NULL,
  amount         bigint  NOT NULL,
  result         integer NOT NULL
);

-- Result codes as PointEx's TransferResult: 0 ok, 9 exceeds_credits, 12 pending not found,
-- 13 already posted, 14 already voided.

-- Locks the two accounts FOR UPDATE in id order; returns the debit account's kind and
-- available amount (balance - debits_pending).
CREATE OR REPLACE FUNCTION lock_pair(d bigint, c bigint, OUT debit_kind text, OUT debit_available bigint)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT id, kind, balance - debits_pending AS available FROM accounts
           WHERE id IN (d, c) ORDER BY id FOR UPDATE LOOP
    IF r.id = d THEN
      debit_kind := r.kind;
      debit_available := r.available;
    END IF;
  END LOOP;
END $$;

-- A single-phase transfer.
CREATE OR REPLACE FUNCTION transfer(tid bigint, d bigint, c bigint, amt bigint, tcode integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  k text;
  available bigint;
BEGIN
  SELECT debit_kind, debit_available INTO k, available FROM lock_pair(d, c);
  IF k = 'member' AND available < amt THEN
    INSERT INTO rejections VALUES (tid, d, c, amt, 9);
    RETURN 9;
  END IF;
  UPDATE accounts SET balance = balance - amt WHERE id = d;
  UPDATE accounts SET balance = balance + amt WHERE id = c;
  INSERT INTO ledger_entries (transfer_id, debit_account, credit_account, amount, ledger, code)
    VALUES (tid, d, c, amt, 1, tcode);
  RETURN 0;
END $$;

-- The first transaction of a two-phase transfer: reserve.
CREATE OR REPLACE FUNCTION pending_create(tid bigint, d bigint, c bigint, amt bigint, tcode integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  k text;
  available bigint;
BEGIN
  SELECT debit_kind, debit_available INTO k, available FROM lock_pair(d, c);
  IF k = 'member' AND available < amt THEN
    INSERT INTO rejections VALUES (tid, d, c, amt, 9);
    RETURN 9;
  END IF;
  UPDATE accounts SET debits_pending = debits_pending + amt WHERE id = d;
  UPDATE accounts SET credits_pending = credits_pending + amt WHERE id = c;
  INSERT INTO pending_transfers (transfer_id, debit_account, credit_account, amount, ledger,
                                 code, state)
    VALUES (tid, d, c, amt, 1, tcode, 'pending');
  RETURN 0;
END $$;

-- The second transaction: post (the whole amount) or void the reservation.
CREATE OR REPLACE FUNCTION pending_finish(tid bigint, pid bigint, do_post boolean)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  p pending_transfers%ROWTYPE;
BEGIN
  SELECT * INTO p FROM pending_transfers WHERE transfer_id = pid FOR UPDATE;
  IF NOT FOUND THEN RETURN 12; END IF;
  IF p.state = 'posted' THEN RETURN 13; END IF;
  IF p.state = 'voided' THEN RETURN 14; END IF;
  PERFORM lock_pair(p.debit_account, p.credit_account);
  IF do_post THEN
    UPDATE accounts SET debits_pending = debits_pending - p.amount,
                        balance = balance - p.amount WHERE id = p.debit_account;
    UPDATE accounts SET credits_pending = credits_pending - p.amount,
                        balance = balance + p.amount WHERE id = p.credit_account;
    INSERT INTO ledger_entries (transfer_id, debit_account, credit_account, amount, ledger, code,
                                pending_id)
      VALUES (tid, p.debit_account, p.credit_account, p.amount, p.ledger, p.code, pid);
    UPDATE pending_transfers SET state = 'posted', finished_by = tid WHERE transfer_id = pid;
  ELSE
    UPDATE accounts SET debits_pending = debits_pending - p.amount WHERE id = p.debit_account;
    UPDATE accounts SET credits_pending = credits_pending - p.amount
      WHERE id = p.credit_account;
    UPDATE pending_transfers SET state = 'voided', finished_by = tid WHERE transfer_id = pid;
  END IF;
  RETURN 0;
END $$;

-- The bench's accounts: issuer 1, members first_member.. (the ids PointEx's bench uses), each
-- member funded from the issuer by one entry (transfer ids 1..members).
INSERT INTO accounts (id, ledger, kind) VALUES (1, 1, 'issuer');
INSERT INTO accounts (id, ledger, kind, balance)
  SELECT :first_member + i - 1, 1, 'member', :funding FROM generate_series(1, :members) AS i;
UPDATE accounts SET balance = -(:funding)::bigint * :members WHERE id = 1;
INSERT INTO ledger_entries (transfer_id, debit_account, credit_account, amount, ledger, code)
  SELECT i, 1, :first_member + i - 1, :funding, 1, 1 FROM generate_series(1, :members) AS i;
VACUUM ANALYZE;
CHECKPOINT;
