// Given/when/then tests of the pure domain core (src/domain/decide.*): every result code the
// domain functions can answer, every state transition of a two-phase transfer, idempotency,
// limits, overflow, the in-flight (wait) decisions and the undo of a tentative debit.
//
// "given" commits transfers (or events) to a small world of account states, "when" runs one
// command through the same pipeline the engine uses (validate_transfer -> check_accounts ->
// decide_debit -> apply_debit -> decide_credit -> apply_credit + confirm_debit, or revert_debit),
// "then" checks the result code, the event and the balances.

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "builders.hpp"
#include "domain/decide.hpp"
#include "pointex/types.hpp"
#include "string_makers.hpp"

namespace {

using namespace pointex;
using namespace pointex::domain;
using Kind = DebitDecision::Kind;

constexpr std::uint64_t max = amount_sum_max;
constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;
constexpr std::uint64_t t0 = 1'700'000'000ULL * ns_per_s;

constexpr LedgerId ledger_a = 1;
constexpr LedgerId ledger_b = 2;
constexpr std::uint16_t code_earn = 10;
constexpr std::uint16_t code_redeem = 20;

// The cast of accounts. Issuers have no limit (they may go negative); members may not spend more
// than they have; the escrow may not be credited more than it was debited.
constexpr AccountId issuer = 1;
constexpr AccountId alice = 2;
constexpr AccountId bob = 3;
constexpr AccountId escrow = 4;
constexpr AccountId issuer2 = 5;
constexpr AccountId b_issuer = 11;  // ledger B
constexpr AccountId b_member = 12;  // ledger B
constexpr AccountId missing = 99;   // never opened

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::reject:
      return "reject";
    case Kind::exists:
      return "exists";
    case Kind::wait:
      return "wait";
    case Kind::accept:
      return "accept";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Builders.

Transfer single(TransferId id, AccountId debit, AccountId credit, std::uint64_t amount,
                LedgerId ledger = ledger_a) {
  return pointex::test::single_transfer(id, debit, credit, amount, ledger, code_earn);
}

Transfer pending(TransferId id, AccountId debit, AccountId credit, std::uint64_t amount,
                 std::uint32_t timeout_s = 0) {
  Transfer t = single(id, debit, credit, amount);
  t.flags = transfer_flags::pending;
  t.timeout_s = timeout_s;
  return t;
}

Transfer post(TransferId id, AccountId debit, TransferId pending_id, std::uint64_t amount = 0) {
  Transfer t;
  t.id = id;
  t.debit_account = debit;
  t.pending_id = pending_id;
  t.amount = amount;
  t.flags = transfer_flags::post_pending;
  return t;
}

Transfer void_of(TransferId id, AccountId debit, TransferId pending_id, std::uint64_t amount = 0) {
  Transfer t = post(id, debit, pending_id, amount);
  t.flags = transfer_flags::void_pending;
  return t;
}

struct Balances {
  std::uint64_t debits_posted = 0;
  std::uint64_t credits_posted = 0;
  std::uint64_t debits_pending = 0;
  std::uint64_t credits_pending = 0;
  bool operator==(const Balances& o) const {
    return debits_posted == o.debits_posted && credits_posted == o.credits_posted &&
           debits_pending == o.debits_pending && credits_pending == o.credits_pending;
  }
};
std::ostream& operator<<(std::ostream& os, const Balances& b) {
  return os << "{dp=" << b.debits_posted << " cp=" << b.credits_posted
            << " dpend=" << b.debits_pending << " cpend=" << b.credits_pending << "}";
}

Balances balances(const AccountState& s) {
  return {s.account.debits_posted, s.account.credits_posted, s.account.debits_pending,
          s.account.credits_pending};
}

bool same_event(const TransferEvent& a, const TransferEvent& b) {
  return a.request == b.request && a.kind == b.kind && a.debit_account == b.debit_account &&
         a.credit_account == b.credit_account && a.ledger == b.ledger && a.code == b.code &&
         a.amount == b.amount && a.pending_amount == b.pending_amount &&
         a.expires_at == b.expires_at && a.timestamp == b.timestamp;
}

bool same_record(const TransferRecord& a, const TransferRecord& b) {
  return same_event(a.event, b.event) && a.state == b.state && a.position == b.position &&
         a.committed == b.committed && a.busy_with == b.busy_with;
}

/// Exact equality of two account states: definition, balances, timestamp, every record.
bool same_state(const AccountState& a, const AccountState& b) {
  if (!(a.account.spec == b.account.spec) || !(balances(a) == balances(b)) ||
      a.account.timestamp != b.account.timestamp || a.transfers.size() != b.transfers.size()) {
    return false;
  }
  for (const auto& [id, record] : a.transfers) {
    const auto it = b.transfers.find(id);
    if (it == b.transfers.end() || !same_record(record, it->second)) return false;
  }
  return true;
}

/// What one command came to.
struct Outcome {
  TransferResult result = TransferResult::ok;
  /// decide_debit's kind (reject for a command refused before it).
  Kind kind = Kind::reject;
  TransferId wait_for = 0;
  /// The committed event (ok only).
  std::optional<TransferEvent> event;
  /// ok and exists: the (original) transfer's timestamp and position.
  std::uint64_t timestamp = 0;
  std::uint64_t position = 0;
};

/// A handful of accounts and the pipeline of the engine, run in one thread.
class World {
 public:
  std::uint64_t now = t0;

  World() {
    open(issuer, 0, ledger_a, AccountKind::issuer);
    open(issuer2, 0, ledger_a, AccountKind::issuer);
    open(alice, account_flags::debits_must_not_exceed_credits);
    open(bob, account_flags::debits_must_not_exceed_credits);
    open(escrow, account_flags::credits_must_not_exceed_debits, ledger_a, AccountKind::system);
    open(b_issuer, 0, ledger_b, AccountKind::issuer);
    open(b_member, account_flags::debits_must_not_exceed_credits, ledger_b);
  }

  AccountState& open(AccountId id, std::uint32_t flags, LedgerId ledger = ledger_a,
                     AccountKind kind = AccountKind::member) {
    AccountState& s = accounts_[id];
    s.account.spec.id = id;
    s.account.spec.ledger = ledger;
    s.account.spec.kind = kind;
    s.account.spec.flags = flags;
    s.account.timestamp = ++last_timestamp_;
    return s;
  }

  AccountState& at(AccountId id) {
    const auto it = accounts_.find(id);
    REQUIRE(it != accounts_.end());
    return it->second;
  }
  Balances balances_of(AccountId id) { return balances(at(id)); }
  const TransferRecord& record(AccountId debit, TransferId id) {
    const auto it = at(debit).transfers.find(id);
    REQUIRE(it != at(debit).transfers.end());
    return it->second;
  }
  bool has_record(AccountId debit, TransferId id) { return at(debit).transfers.count(id) == 1; }

  /// Steps 1-3 only: what the debit account's actor decides, nothing applied.
  DebitDecision decide(const Transfer& t) {
    const bool credit_closed = t.credit_account != 0 && accounts_.count(t.credit_account) == 1 &&
                               at(t.credit_account).closed();
    return decide_debit(at(t.debit_account), t, credit_closed, now);
  }

  /// The whole pipeline; an accepted event is committed (or undone when the credit side refuses).
  Outcome when(const Transfer& t) {
    Outcome o;
    o.result = validate_transfer(t);
    if (o.result == TransferResult::ok) o.result = check_client_transfer(t);
    if (o.result != TransferResult::ok) return o;
    o.result = check_accounts(t, spec(t.debit_account),
                              t.credit_account == 0 ? nullptr : spec(t.credit_account));
    if (o.result != TransferResult::ok) return o;
    const DebitDecision d = decide(t);
    o.kind = d.kind;
    switch (d.kind) {
      case Kind::reject:
        o.result = d.result;
        return o;
      case Kind::wait:
        o.wait_for = d.wait_for;
        return o;
      case Kind::exists:
        o.result = d.result;
        REQUIRE(d.record != nullptr);
        if (o.result == TransferResult::exists) {
          o.timestamp = d.record->event.timestamp;
          o.position = d.record->position;
        }
        return o;
      case Kind::accept:
        break;
    }
    AccountState& debit = at(t.debit_account);
    AccountState& credit = at(d.event.credit_account);
    const AccountState before = debit;
    apply_debit(debit, d.event);
    o.result = decide_credit(credit, d.event);
    if (o.result != TransferResult::ok) {
      revert_debit(debit, d.event);
      REQUIRE(same_state(debit, before));
      return o;
    }
    apply_credit(credit, d.event);
    commit(debit, d.event, o);
    return o;
  }

  /// A command that must succeed (a "given").
  TransferEvent given(const Transfer& t) {
    const Outcome o = when(t);
    INFO("given transfer " << t.id << " answered " << to_string(o.result));
    REQUIRE(o.result == TransferResult::ok);
    REQUIRE(o.event.has_value());
    return *o.event;
  }

  /// Starts a transfer: decided and applied to the debit account, not yet durable.
  TransferEvent begin(const Transfer& t) {
    REQUIRE(validate_transfer(t) == TransferResult::ok);
    const DebitDecision d = decide(t);
    INFO("begin: decide_debit answered " << kind_name(d.kind) << " " << to_string(d.result));
    REQUIRE(d.kind == Kind::accept);
    apply_debit(at(t.debit_account), d.event);
    return d.event;
  }
  /// Finishes a begun transfer: credit side applied, debit side confirmed.
  Outcome finish(const TransferEvent& e) {
    AccountState& credit = at(e.credit_account);
    Outcome o;
    o.result = decide_credit(credit, e);
    REQUIRE(o.result == TransferResult::ok);
    apply_credit(credit, e);
    commit(at(e.debit_account), e, o);
    return o;
  }

  /// The expiry timer: decide_expire and, when it answers an event, its commit.
  std::optional<TransferEvent> expire(AccountId debit, TransferId pending_id) {
    std::optional<TransferEvent> e = decide_expire(at(debit), pending_id, now);
    if (!e) return e;
    Outcome o;
    apply_debit(at(debit), *e);
    REQUIRE(decide_credit(at(e->credit_account), *e) == TransferResult::ok);
    apply_credit(at(e->credit_account), *e);
    commit(at(debit), *e, o);
    return o.event;
  }

  CloseResult close(AccountId id) {
    const CloseResult r = decide_close(at(id));
    if (r == CloseResult::ok) apply_close(at(id));
    return r;
  }

  /// Rebuilds every account from the committed events by evolve() and requires the result to
  /// equal the incremental states.
  void require_replay_equal() {
    std::map<AccountId, AccountState> rebuilt;
    for (const auto& [id, s] : accounts_) {
      AccountState fresh;
      fresh.account.spec = s.account.spec;
      fresh.account.spec.flags &= ~account_flags::closed;
      fresh.account.timestamp = s.account.timestamp;
      rebuilt.emplace(id, fresh);
    }
    for (const auto& [e, position] : log_) {
      evolve(rebuilt.at(e.debit_account), e, position);
      evolve(rebuilt.at(e.credit_account), e, position);
    }
    for (auto& [id, s] : rebuilt) {
      if (accounts_.at(id).closed()) apply_close(s);
      INFO("account " << id);
      REQUIRE(same_state(s, accounts_.at(id)));
    }
  }

 private:
  const AccountSpec* spec(AccountId id) const {
    const auto it = accounts_.find(id);
    return it == accounts_.end() ? nullptr : &it->second.account.spec;
  }

  void commit(AccountState& debit, const TransferEvent& e, Outcome& o) {
    o.timestamp = last_timestamp_ = std::max(last_timestamp_ + 1, now);
    o.position = ++last_position_;
    confirm_debit(debit, e, o.timestamp, o.position);
    o.event = e;
    o.event->timestamp = o.timestamp;
    log_.emplace_back(*o.event, o.position);
  }

  std::map<AccountId, AccountState> accounts_;
  std::vector<std::pair<TransferEvent, std::uint64_t>> log_;
  std::uint64_t last_timestamp_ = t0 - 1000;
  std::uint64_t last_position_ = 0;
};

/// A world where alice holds 100 points earned from the issuer (transfer 1).
World world_with_funded_alice() {
  World w;
  w.given(single(1, issuer, alice, 100));
  return w;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Step 1 and 2: fields and accounts.

TEST_CASE("validate_transfer checks the item's own fields in a fixed order", "[domain][fields]") {
  struct Case {
    const char* what;
    Transfer transfer;
    TransferResult expected;
  };
  const auto with = [](Transfer t, auto change) {
    change(t);
    return t;
  };
  const Transfer s = single(7, issuer, alice, 5);
  const Transfer p = pending(7, issuer, alice, 5, 60);
  const Transfer po = post(8, issuer, 7);
  const Transfer vo = void_of(8, issuer, 7);
  const std::vector<Case> cases = {
      {"valid single", s, TransferResult::ok},
      {"valid pending with timeout", p, TransferResult::ok},
      {"valid post: only id, debit_account, pending_id", po, TransferResult::ok},
      {"valid void", vo, TransferResult::ok},
      {"post with every field given",
       with(po,
            [](Transfer& t) {
              t.credit_account = alice;
              t.amount = 3;
              t.ledger = ledger_a;
              t.code = code_earn;
              t.user_data = 9;
            }),
       TransferResult::ok},
      {"zero id", with(s, [](Transfer& t) { t.id = 0; }), TransferResult::id_must_not_be_zero},
      {"zero id wins over everything", Transfer{}, TransferResult::id_must_not_be_zero},
      {"unknown flag bit", with(s, [](Transfer& t) { t.flags = 1U << 4; }),
       TransferResult::unknown_flags},
      {"unknown flag bit with a known one",
       with(s, [](Transfer& t) { t.flags = transfer_flags::pending | (1U << 31); }),
       TransferResult::unknown_flags},
      {"pending and post",
       with(s,
            [](Transfer& t) { t.flags = transfer_flags::pending | transfer_flags::post_pending; }),
       TransferResult::flags_are_mutually_exclusive},
      {"post and void", with(po, [](Transfer& t) { t.flags = transfer_flags::all; }),
       TransferResult::flags_are_mutually_exclusive},
      {"zero debit account", with(s, [](Transfer& t) { t.debit_account = 0; }),
       TransferResult::debit_account_must_not_be_zero},
      {"zero debit account on a post", with(po, [](Transfer& t) { t.debit_account = 0; }),
       TransferResult::debit_account_must_not_be_zero},
      {"zero credit account", with(s, [](Transfer& t) { t.credit_account = 0; }),
       TransferResult::credit_account_must_not_be_zero},
      {"zero amount", with(s, [](Transfer& t) { t.amount = 0; }),
       TransferResult::amount_must_not_be_zero},
      {"zero amount on a pending", with(p, [](Transfer& t) { t.amount = 0; }),
       TransferResult::amount_must_not_be_zero},
      {"same accounts", with(s, [](Transfer& t) { t.credit_account = t.debit_account; }),
       TransferResult::accounts_must_be_different},
      {"same accounts on a void", with(vo, [](Transfer& t) { t.credit_account = issuer; }),
       TransferResult::accounts_must_be_different},
      {"pending_id on a single", with(s, [](Transfer& t) { t.pending_id = 3; }),
       TransferResult::pending_id_must_be_zero},
      {"pending_id on a pending", with(p, [](Transfer& t) { t.pending_id = 3; }),
       TransferResult::pending_id_must_be_zero},
      {"timeout on a single", with(s, [](Transfer& t) { t.timeout_s = 1; }),
       TransferResult::timeout_reserved_for_pending_transfer},
      {"timeout on a post", with(po, [](Transfer& t) { t.timeout_s = 1; }),
       TransferResult::timeout_reserved_for_pending_transfer},
      {"zero ledger", with(s, [](Transfer& t) { t.ledger = 0; }),
       TransferResult::ledger_must_not_be_zero},
      {"zero code", with(s, [](Transfer& t) { t.code = 0; }),
       TransferResult::code_must_not_be_zero},
      {"post without pending_id", with(po, [](Transfer& t) { t.pending_id = 0; }),
       TransferResult::pending_id_must_not_be_zero},
      {"void naming itself", with(vo, [](Transfer& t) { t.pending_id = t.id; }),
       TransferResult::pending_id_must_be_different},
      // Order: the first failing check is the answer.
      {"credit zero before amount zero",
       with(s,
            [](Transfer& t) {
              t.credit_account = 0;
              t.amount = 0;
            }),
       TransferResult::credit_account_must_not_be_zero},
      {"amount zero before same accounts",
       with(s,
            [](Transfer& t) {
              t.amount = 0;
              t.credit_account = t.debit_account;
            }),
       TransferResult::amount_must_not_be_zero},
      {"ledger zero before code zero",
       with(s,
            [](Transfer& t) {
              t.ledger = 0;
              t.code = 0;
            }),
       TransferResult::ledger_must_not_be_zero},
      {"unknown flag before zero debit account",
       with(s,
            [](Transfer& t) {
              t.flags = 1U << 4;
              t.debit_account = 0;
            }),
       TransferResult::unknown_flags},
      {"void: same accounts before missing pending_id",
       with(vo,
            [](Transfer& t) {
              t.credit_account = issuer;
              t.pending_id = 0;
            }),
       TransferResult::accounts_must_be_different},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    CHECK(validate_transfer(c.transfer) == c.expected);
  }
}

TEST_CASE("check_accounts: both accounts exist and share the debit account's ledger",
          "[domain][accounts]") {
  AccountSpec a;
  a.id = alice;
  a.ledger = ledger_a;
  AccountSpec i;
  i.id = issuer;
  i.ledger = ledger_a;
  AccountSpec b;
  b.id = b_member;
  b.ledger = ledger_b;

  const Transfer s = single(1, issuer, alice, 5);
  CHECK(check_accounts(s, &i, &a) == TransferResult::ok);
  CHECK(check_accounts(s, nullptr, &a) == TransferResult::debit_account_not_found);
  CHECK(check_accounts(s, nullptr, nullptr) == TransferResult::debit_account_not_found);
  CHECK(check_accounts(s, &i, nullptr) == TransferResult::credit_account_not_found);

  SECTION("the credit account is on another ledger") {
    Transfer t = single(1, issuer, b_member, 5);
    CHECK(check_accounts(t, &i, &b) == TransferResult::ledger_mismatch);
  }
  SECTION("the transfer names another ledger than its accounts'") {
    CHECK(check_accounts(single(1, issuer, alice, 5, ledger_b), &i, &a) ==
          TransferResult::ledger_mismatch);
  }
  SECTION("a post or void may leave credit_account and ledger out") {
    CHECK(check_accounts(post(2, issuer, 1), &i, nullptr) == TransferResult::ok);
    CHECK(check_accounts(void_of(2, issuer, 1), &i, nullptr) == TransferResult::ok);
    CHECK(check_accounts(post(2, issuer, 1), nullptr, nullptr) ==
          TransferResult::debit_account_not_found);
  }
  SECTION("a post that names a credit account must name an existing one on the same ledger") {
    Transfer t = post(2, issuer, 1);
    t.credit_account = missing;
    CHECK(check_accounts(t, &i, nullptr) == TransferResult::credit_account_not_found);
    t.credit_account = b_member;
    CHECK(check_accounts(t, &i, &b) == TransferResult::ledger_mismatch);
    t.credit_account = 0;
    t.ledger = ledger_b;
    CHECK(check_accounts(t, &i, nullptr) == TransferResult::ledger_mismatch);
  }
}

TEST_CASE("the pipeline answers field and account errors before anything else", "[domain][order]") {
  World w = world_with_funded_alice();
  SECTION("fields before accounts") {
    CHECK(w.when(single(5, missing, alice, 0)).result == TransferResult::amount_must_not_be_zero);
  }
  SECTION("accounts before the id: a retry naming another ledger is ledger_mismatch") {
    CHECK(w.when(single(1, issuer, alice, 100, ledger_b)).result ==
          TransferResult::ledger_mismatch);
  }
  SECTION("debit account not found, credit account not found, ledger mismatch") {
    CHECK(w.when(single(5, missing, alice, 1)).result == TransferResult::debit_account_not_found);
    CHECK(w.when(single(5, issuer, missing, 1)).result == TransferResult::credit_account_not_found);
    CHECK(w.when(single(5, issuer, b_member, 1)).result == TransferResult::ledger_mismatch);
  }
  CHECK(w.balances_of(alice) == Balances{0, 100, 0, 0});
  CHECK(w.balances_of(issuer) == Balances{100, 0, 0, 0});
}

// ---------------------------------------------------------------------------------------------
// Single-phase transfers, idempotency, closed accounts.

TEST_CASE("given accounts, when a single transfer, then one single event moves the amount",
          "[domain][single]") {
  World w;
  Transfer t = single(1, issuer, alice, 100);
  t.user_data = 77;
  const Outcome o = w.when(t);
  REQUIRE(o.result == TransferResult::ok);
  REQUIRE(o.event.has_value());
  const TransferEvent& e = *o.event;
  CHECK(e.kind == TransferKind::single);
  CHECK(e.request == t);
  CHECK(e.debit_account == issuer);
  CHECK(e.credit_account == alice);
  CHECK(e.ledger == ledger_a);
  CHECK(e.code == code_earn);
  CHECK(e.amount == 100);
  CHECK(e.pending_amount == 0);
  CHECK(e.expires_at == 0);
  CHECK(e.timestamp == o.timestamp);
  CHECK(o.position == 1);

  CHECK(w.balances_of(issuer) == Balances{100, 0, 0, 0});
  CHECK(w.balances_of(alice) == Balances{0, 100, 0, 0});
  CHECK(w.at(issuer).account.balance() == -100);
  CHECK(w.at(alice).account.balance() == 100);
  CHECK(w.at(alice).account.available() == 100);

  const TransferRecord& r = w.record(issuer, 1);
  CHECK(r.state == TransferState::posted);
  CHECK(r.committed);
  CHECK(r.busy_with == 0);
  CHECK(r.position == 1);
  CHECK(r.event.timestamp == o.timestamp);
  // Records are kept by the debit account only.
  CHECK_FALSE(w.has_record(alice, 1));

  const TransferInfo info = transfer_info(r);
  CHECK(info.request == t);
  CHECK(info.debit_account == issuer);
  CHECK(info.credit_account == alice);
  CHECK(info.amount == 100);
  CHECK(info.state == TransferState::posted);
  CHECK(info.timestamp == o.timestamp);
  CHECK(info.position == 1);
  CHECK(info.expires_at == 0);

  w.require_replay_equal();
}

TEST_CASE("idempotency: a retry with the same body gets exists and the original outcome",
          "[domain][idempotency]") {
  World w;
  const Outcome first = w.when(single(1, issuer, alice, 100));
  REQUIRE(first.result == TransferResult::ok);
  w.now += 5 * ns_per_s;

  const Outcome retry = w.when(single(1, issuer, alice, 100));
  CHECK(retry.result == TransferResult::exists);
  CHECK(retry.kind == Kind::exists);
  CHECK(retry.timestamp == first.timestamp);
  CHECK(retry.position == first.position);
  CHECK_FALSE(retry.event.has_value());
  CHECK(w.balances_of(issuer) == Balances{100, 0, 0, 0});
  CHECK(w.balances_of(alice) == Balances{0, 100, 0, 0});

  const DebitDecision d = w.decide(single(1, issuer, alice, 100));
  REQUIRE(d.kind == Kind::exists);
  REQUIRE(d.record != nullptr);
  CHECK(d.record == &w.record(issuer, 1));
  CHECK(d.record->event.amount == 100);
  CHECK(d.record->position == first.position);

  SECTION("ids are scoped to the debit account: the same id from another account is new") {
    CHECK(w.when(single(1, issuer2, alice, 7)).result == TransferResult::ok);
    CHECK(w.balances_of(alice) == Balances{0, 107, 0, 0});
  }
}

TEST_CASE("idempotency: any differing field is exists_with_different_fields",
          "[domain][idempotency]") {
  World w;
  Transfer original = pending(1, issuer, alice, 100, 60);
  original.user_data = 5;
  const Outcome first = w.when(original);
  REQUIRE(first.result == TransferResult::ok);

  struct Change {
    const char* field;
    void (*apply)(Transfer&);
  };
  const std::vector<Change> changes = {
      {"credit_account", [](Transfer& t) { t.credit_account = bob; }},
      {"amount", [](Transfer& t) { t.amount = 101; }},
      {"ledger", [](Transfer& t) { t.ledger = ledger_b; }},
      {"code", [](Transfer& t) { t.code = code_redeem; }},
      {"flags", [](Transfer& t) { t.flags = 0; }},
      {"pending_id", [](Transfer& t) { t.pending_id = 9; }},
      {"timeout_s", [](Transfer& t) { t.timeout_s = 61; }},
      {"user_data", [](Transfer& t) { t.user_data = 6; }},
  };
  for (const Change& c : changes) {
    INFO("changed field: " << c.field);
    Transfer t = original;
    c.apply(t);
    // The debit account's decision, whatever the earlier steps say of the new fields.
    const DebitDecision d = w.decide(t);
    CHECK(d.kind == Kind::exists);
    CHECK(d.result == TransferResult::exists_with_different_fields);
    REQUIRE(d.record != nullptr);
    CHECK(d.record->event.request == original);
  }
  // Through the whole pipeline, where the changed fields still pass steps 1 and 2.
  Transfer t = original;
  t.amount = 1;
  CHECK(w.when(t).result == TransferResult::exists_with_different_fields);
  t = original;
  t.flags = 0;
  t.timeout_s = 0;
  CHECK(w.when(t).result == TransferResult::exists_with_different_fields);
  t = original;
  t.user_data = 0;
  const Outcome o = w.when(t);
  CHECK(o.result == TransferResult::exists_with_different_fields);
  CHECK(o.position == 0);
  CHECK(w.balances_of(issuer) == Balances{0, 0, 100, 0});
  CHECK(w.balances_of(alice) == Balances{0, 0, 0, 100});
}

TEST_CASE("idempotency: posts and voids are stored under their own id", "[domain][idempotency]") {
  World w;
  w.given(pending(1, issuer, alice, 100));
  w.given(pending(2, issuer, alice, 50));
  const Outcome p = w.when(post(3, issuer, 1, 40));
  REQUIRE(p.result == TransferResult::ok);
  const Outcome v = w.when(void_of(4, issuer, 2));
  REQUIRE(v.result == TransferResult::ok);

  const Outcome post_retry = w.when(post(3, issuer, 1, 40));
  CHECK(post_retry.result == TransferResult::exists);
  CHECK(post_retry.position == p.position);
  CHECK(w.when(void_of(4, issuer, 2)).result == TransferResult::exists);
  CHECK(w.when(post(3, issuer, 1)).result == TransferResult::exists_with_different_fields);
  CHECK(w.when(post(3, issuer, 2, 40)).result == TransferResult::exists_with_different_fields);
  CHECK(w.when(void_of(3, issuer, 1, 40)).result == TransferResult::exists_with_different_fields);
  CHECK(w.when(void_of(4, issuer, 2, 50)).result == TransferResult::exists_with_different_fields);
  CHECK(w.balances_of(issuer) == Balances{40, 0, 0, 0});
  CHECK(w.balances_of(alice) == Balances{0, 40, 0, 0});
}

TEST_CASE("idempotency: a failed transfer claims no id and a retry is decided afresh",
          "[domain][idempotency]") {
  World w;
  const Transfer spend = single(1, alice, bob, 30);
  CHECK(w.when(spend).result == TransferResult::exceeds_credits);
  CHECK_FALSE(w.has_record(alice, 1));
  w.given(single(1, issuer, alice, 100));
  CHECK(w.when(spend).result == TransferResult::ok);
  CHECK(w.when(spend).result == TransferResult::exists);
  CHECK(w.balances_of(alice) == Balances{30, 100, 0, 0});
  CHECK(w.balances_of(bob) == Balances{0, 30, 0, 0});
}

TEST_CASE("account_closed on either side, after exists", "[domain][closed]") {
  World w = world_with_funded_alice();                       // issuer -> alice 100 (id 1)
  const Outcome spent = w.when(single(2, alice, bob, 100));  // alice empty again
  REQUIRE(spent.result == TransferResult::ok);
  REQUIRE(w.close(alice) == CloseResult::ok);
  REQUIRE(w.at(alice).closed());

  SECTION("a new transfer from a closed account") {
    CHECK(w.when(single(3, alice, bob, 1)).result == TransferResult::account_closed);
  }
  SECTION("a new transfer to a closed account") {
    CHECK(w.when(single(3, issuer, alice, 1)).result == TransferResult::account_closed);
    CHECK(w.when(pending(3, issuer, alice, 1)).result == TransferResult::account_closed);
  }
  SECTION("a retry of a transfer from the closed account still gets exists") {
    const Outcome o = w.when(single(2, alice, bob, 100));
    CHECK(o.result == TransferResult::exists);
    CHECK(o.position == spent.position);
    CHECK(w.when(single(2, alice, bob, 99)).result == TransferResult::exists_with_different_fields);
  }
  SECTION("a retry of a transfer to the closed account still gets exists") {
    CHECK(w.when(single(1, issuer, alice, 100)).result == TransferResult::exists);
  }
  SECTION("post and void on a closed account: account_closed comes before the pending checks") {
    CHECK(w.when(post(3, alice, 1)).result == TransferResult::account_closed);
    CHECK(w.when(void_of(3, alice, 42)).result == TransferResult::account_closed);
  }
  SECTION("the credit account's actor checks again when the directory did not know yet") {
    // decide_debit was told the credit account is open; decide_credit knows better.
    const DebitDecision d = decide_debit(w.at(issuer), single(3, issuer, alice, 1), false, w.now);
    REQUIRE(d.kind == Kind::accept);
    const AccountState before = w.at(issuer);
    apply_debit(w.at(issuer), d.event);
    CHECK(decide_credit(w.at(alice), d.event) == TransferResult::account_closed);
    revert_debit(w.at(issuer), d.event);
    CHECK(same_state(w.at(issuer), before));
  }
  CHECK(w.balances_of(alice) == Balances{100, 100, 0, 0});
  CHECK(w.balances_of(bob) == Balances{0, 100, 0, 0});
  w.require_replay_equal();
}

TEST_CASE("decide_close: ok when empty, idempotent, account_not_empty otherwise",
          "[domain][close]") {
  World w;
  SECTION("a fresh account closes, and a second close answers the same") {
    CHECK(decide_close(w.at(bob)) == CloseResult::ok);
    apply_close(w.at(bob));
    CHECK(w.at(bob).closed());
    CHECK((w.at(bob).account.spec.flags & account_flags::debits_must_not_exceed_credits) != 0);
    CHECK(decide_close(w.at(bob)) == CloseResult::ok);
    apply_close(w.at(bob));
    CHECK(w.at(bob).account.spec.flags ==
          (account_flags::debits_must_not_exceed_credits | account_flags::closed));
  }
  SECTION("a balance that is not zero") {
    w.given(single(1, issuer, alice, 10));
    CHECK(w.close(alice) == CloseResult::account_not_empty);
    CHECK(w.close(issuer) == CloseResult::account_not_empty);
    CHECK_FALSE(w.at(alice).closed());
    SECTION("once spent to zero, it closes: zero balance with history is empty") {
      w.given(single(2, alice, bob, 10));
      CHECK(w.close(alice) == CloseResult::ok);
      CHECK(w.at(alice).closed());
      CHECK(w.close(alice) == CloseResult::ok);
    }
  }
  SECTION("pending amounts on either side") {
    w.given(pending(1, issuer, alice, 10));
    CHECK(w.at(issuer).account.balance() == 0);
    CHECK(w.at(alice).account.balance() == 0);
    CHECK(w.close(issuer) == CloseResult::account_not_empty);  // debits_pending
    CHECK(w.close(alice) == CloseResult::account_not_empty);   // credits_pending
    w.given(void_of(3, issuer, 1));
    CHECK(w.close(alice) == CloseResult::ok);
    CHECK(w.close(issuer) == CloseResult::ok);
  }
  SECTION("a transfer in flight: not empty until it is durable (it may still be undone)") {
    w.given(single(1, issuer, alice, 100));
    // alice spends everything into the escrow, which will refuse it (exceeds_debits). While the
    // debit is only tentative, alice's balance reads zero.
    const DebitDecision d = w.decide(single(2, alice, escrow, 100));
    REQUIRE(d.kind == Kind::accept);
    apply_debit(w.at(alice), d.event);
    REQUIRE(w.at(alice).empty());
    CHECK(decide_close(w.at(alice)) == CloseResult::account_not_empty);
    REQUIRE(decide_credit(w.at(escrow), d.event) == TransferResult::exceeds_debits);
    revert_debit(w.at(alice), d.event);
    CHECK(w.at(alice).account.balance() == 100);
    CHECK(decide_close(w.at(alice)) == CloseResult::account_not_empty);
  }
  SECTION("a void in flight: not empty until it is durable") {
    w.given(single(2, issuer, alice, 1));
    w.given(pending(1, alice, bob, 1));  // alice: credits 1, pending debit 1
    const TransferEvent e = w.begin(void_of(3, alice, 1));
    w.given(single(4, alice, bob, 1));  // balance zero, the reserve tentatively released
    REQUIRE(w.at(alice).empty());
    CHECK(decide_close(w.at(alice)) == CloseResult::account_not_empty);
    w.finish(e);
    CHECK(decide_close(w.at(alice)) == CloseResult::ok);
  }
}

// ---------------------------------------------------------------------------------------------
// Limits and overflow.

TEST_CASE("debits_must_not_exceed_credits: a member spends at most what it holds",
          "[domain][limits]") {
  World w = world_with_funded_alice();  // alice: credits_posted 100
  CHECK(w.when(single(2, alice, bob, 101)).result == TransferResult::exceeds_credits);
  SECTION("pending debits count against the limit") {
    w.given(pending(2, alice, bob, 60));
    CHECK(w.when(single(3, alice, bob, 41)).result == TransferResult::exceeds_credits);
    CHECK(w.when(pending(3, alice, bob, 41)).result == TransferResult::exceeds_credits);
    CHECK(w.when(single(3, alice, bob, 40)).result == TransferResult::ok);
    CHECK(w.balances_of(alice) == Balances{40, 100, 60, 0});
    CHECK(w.at(alice).account.available() == 0);
    CHECK(w.when(single(4, alice, bob, 1)).result == TransferResult::exceeds_credits);
    SECTION("voiding the pending one frees the reserve") {
      w.given(void_of(5, alice, 2));
      CHECK(w.when(single(4, alice, bob, 60)).result == TransferResult::ok);
      CHECK(w.balances_of(alice) == Balances{100, 100, 0, 0});
    }
  }
  SECTION("pending credits do not count as something to spend") {
    w.given(pending(2, issuer, alice, 50));
    CHECK(w.when(single(3, alice, bob, 101)).result == TransferResult::exceeds_credits);
  }
  SECTION("spending exactly everything is fine") {
    CHECK(w.when(single(2, alice, bob, 100)).result == TransferResult::ok);
    CHECK(w.at(alice).account.balance() == 0);
  }
  SECTION("an issuer without the flag goes negative") {
    CHECK(w.when(single(2, issuer, bob, 1000)).result == TransferResult::ok);
    CHECK(w.at(issuer).account.balance() == -1100);
  }
}

TEST_CASE("credits_must_not_exceed_debits: the escrow is credited at most what it gave",
          "[domain][limits]") {
  World w = world_with_funded_alice();
  CHECK(w.when(single(2, alice, escrow, 1)).result == TransferResult::exceeds_debits);
  CHECK(w.balances_of(alice) == Balances{0, 100, 0, 0});  // the tentative debit was undone
  CHECK_FALSE(w.has_record(alice, 2));

  w.given(single(3, escrow, bob, 50));  // escrow has no limit on its debit side
  CHECK(w.when(single(2, alice, escrow, 51)).result == TransferResult::exceeds_debits);
  w.given(pending(4, alice, escrow, 30));
  // credits_posted + credits_pending + amount > debits_posted
  CHECK(w.when(single(2, alice, escrow, 21)).result == TransferResult::exceeds_debits);
  CHECK(w.when(pending(2, alice, escrow, 21)).result == TransferResult::exceeds_debits);
  CHECK(w.when(single(2, alice, escrow, 20)).result == TransferResult::ok);
  CHECK(w.balances_of(escrow) == Balances{50, 20, 0, 30});
  CHECK(w.balances_of(alice) == Balances{20, 100, 30, 0});
  SECTION("posting the pending credit does not hit the limit") {
    CHECK(w.when(post(5, alice, 4)).result == TransferResult::ok);
    CHECK(w.balances_of(escrow) == Balances{50, 50, 0, 0});
  }
  SECTION("the debit side is checked first") {
    CHECK(w.when(single(6, bob, escrow, 51)).result == TransferResult::exceeds_credits);
  }
  w.require_replay_equal();
}

TEST_CASE("overflow: no balance field ever passes amount_sum_max, nothing wraps",
          "[domain][overflow]") {
  World w;
  SECTION("the largest amount on fresh accounts is fine, one more is overflow") {
    CHECK(w.when(single(1, issuer, bob, max + 1)).result == TransferResult::overflow);
    CHECK(w.when(single(1, issuer, bob, UINT64_MAX)).result == TransferResult::overflow);
    CHECK(w.when(pending(1, issuer, bob, UINT64_MAX)).result == TransferResult::overflow);
    CHECK(w.when(single(1, issuer, bob, max)).result == TransferResult::ok);
    CHECK(w.balances_of(issuer) == Balances{max, 0, 0, 0});
    CHECK(w.balances_of(bob) == Balances{0, max, 0, 0});
    CHECK(w.at(issuer).account.balance() == std::numeric_limits<std::int64_t>::min() + 1);
    CHECK(w.at(bob).account.balance() == std::numeric_limits<std::int64_t>::max());
  }
  SECTION("debits_posted of the debit account") {
    w.given(single(1, issuer, alice, max - 1));
    CHECK(w.when(single(2, issuer, bob, 2)).result == TransferResult::overflow);
    CHECK(w.when(single(2, issuer, bob, UINT64_MAX)).result == TransferResult::overflow);
    CHECK(w.when(single(2, issuer, bob, 1)).result == TransferResult::ok);
    CHECK(w.balances_of(issuer) == Balances{max, 0, 0, 0});
    CHECK(w.when(single(3, issuer, bob, 1)).result == TransferResult::overflow);
    // posted and pending count together
    CHECK(w.when(pending(3, issuer, bob, 1)).result == TransferResult::overflow);
  }
  SECTION("credits_posted of the credit account: the tentative debit is undone") {
    w.given(single(1, issuer, alice, max - 1));
    const AccountState before = w.at(issuer2);
    CHECK(w.when(single(1, issuer2, alice, 2)).result == TransferResult::overflow);
    CHECK(same_state(w.at(issuer2), before));
    CHECK(w.when(single(1, issuer2, alice, 1)).result == TransferResult::ok);
    CHECK(w.balances_of(alice) == Balances{0, max, 0, 0});
  }
  SECTION("debits_pending and credits_pending") {
    w.given(pending(1, issuer, alice, max));
    CHECK(w.when(pending(2, issuer, bob, 1)).result == TransferResult::overflow);
    CHECK(w.when(pending(2, issuer2, alice, 1)).result == TransferResult::overflow);
    // credits_posted + credits_pending would pass the maximum
    CHECK(w.when(single(2, issuer2, alice, 1)).result == TransferResult::overflow);
    CHECK(w.balances_of(alice) == Balances{0, 0, 0, max});
    // the available amount of the most indebted debit account still fits
    CHECK(w.at(issuer).account.available() == -std::numeric_limits<std::int64_t>::max());
  }
  SECTION("a post never overflows: posted and pending were bounded together") {
    w.given(single(1, issuer, alice, max - 10));
    w.given(pending(2, issuer, bob, 10));
    CHECK(w.when(pending(3, issuer, bob, 1)).result == TransferResult::overflow);
    CHECK(w.when(post(3, issuer, 2)).result == TransferResult::ok);
    CHECK(w.balances_of(issuer) == Balances{max, 0, 0, 0});
    CHECK(w.balances_of(bob) == Balances{0, 10, 0, 0});
  }
  SECTION("a pending credit past the maximum is refused by the credit side and undone") {
    w.given(single(1, issuer, alice, max - 5));
    const AccountState before = w.at(issuer2);
    const Outcome o = w.when(pending(2, issuer2, alice, 10));
    CHECK(o.result == TransferResult::overflow);
    CHECK(o.kind == Kind::accept);  // the debit side accepted; the credit side refused
    CHECK(same_state(w.at(issuer2), before));
    CHECK_FALSE(w.has_record(issuer2, 2));
    CHECK(w.when(pending(2, issuer2, alice, 5)).result == TransferResult::ok);
    CHECK(w.when(post(3, issuer2, 2)).result == TransferResult::ok);
    CHECK(w.balances_of(alice) == Balances{0, max, 0, 0});
    CHECK(w.balances_of(issuer2) == Balances{5, 0, 0, 0});
  }
  SECTION("a limit check comes before the overflow check") {
    // escrow: debits_posted = max, credits_posted = max; crediting 1 more breaks both rules.
    w.given(single(1, escrow, issuer, max));
    w.given(single(2, issuer2, escrow, max));
    CHECK(w.when(single(3, issuer, escrow, 1)).result == TransferResult::exceeds_debits);
  }
  for (AccountId id : {issuer, issuer2, alice, bob, escrow}) {
    const Balances b = w.balances_of(id);
    CHECK(b.debits_pending <= max - b.debits_posted);
    CHECK(b.credits_pending <= max - b.credits_posted);
  }
  w.require_replay_equal();
}

// ---------------------------------------------------------------------------------------------
// Two-phase transfers.

TEST_CASE("pending -> posted in full", "[domain][two-phase]") {
  World w;
  const TransferEvent p = w.given(pending(1, issuer, alice, 100));
  CHECK(p.kind == TransferKind::pending);
  CHECK(p.amount == 100);
  CHECK(p.expires_at == 0);
  CHECK(w.record(issuer, 1).state == TransferState::pending);
  CHECK(w.balances_of(issuer) == Balances{0, 0, 100, 0});
  CHECK(w.balances_of(alice) == Balances{0, 0, 0, 100});
  CHECK(w.at(alice).account.available() == 0);

  const Outcome o = w.when(post(2, issuer, 1));
  REQUIRE(o.result == TransferResult::ok);
  const TransferEvent& e = *o.event;
  CHECK(e.kind == TransferKind::post);
  CHECK(e.request == post(2, issuer, 1));
  // resolved from the pending transfer
  CHECK(e.debit_account == issuer);
  CHECK(e.credit_account == alice);
  CHECK(e.ledger == ledger_a);
  CHECK(e.code == code_earn);
  CHECK(e.amount == 100);
  CHECK(e.pending_amount == 100);

  CHECK(w.balances_of(issuer) == Balances{100, 0, 0, 0});
  CHECK(w.balances_of(alice) == Balances{0, 100, 0, 0});
  CHECK(w.record(issuer, 1).state == TransferState::posted);
  CHECK(w.record(issuer, 1).busy_with == 0);
  CHECK(w.record(issuer, 2).state == TransferState::posted);
  CHECK(w.record(issuer, 2).committed);
  CHECK(transfer_info(w.record(issuer, 2)).amount == 100);
  w.require_replay_equal();
}

TEST_CASE("pending -> posted in part: the rest is released", "[domain][two-phase]") {
  World w;
  w.given(pending(1, issuer, alice, 100));
  Transfer t = post(2, issuer, 1, 30);
  t.credit_account = alice;  // given fields must match, and do
  t.code = code_earn;
  t.ledger = ledger_a;
  const Outcome o = w.when(t);
  REQUIRE(o.result == TransferResult::ok);
  CHECK(o.event->amount == 30);
  CHECK(o.event->pending_amount == 100);
  CHECK(w.balances_of(issuer) == Balances{30, 0, 0, 0});
  CHECK(w.balances_of(alice) == Balances{0, 30, 0, 0});
  CHECK(w.record(issuer, 1).state == TransferState::posted);
  const TransferInfo info = transfer_info(w.record(issuer, 2));
  CHECK(info.amount == 30);
  CHECK(info.credit_account == alice);
  CHECK(info.state == TransferState::posted);
  // the pending transfer itself still shows what it reserved
  CHECK(transfer_info(w.record(issuer, 1)).amount == 100);

  SECTION("posting exactly the pending amount is the full post") {
    World w2;
    w2.given(pending(1, issuer, alice, 100));
    CHECK(w2.when(post(2, issuer, 1, 100)).result == TransferResult::ok);
    CHECK(w2.balances_of(alice) == Balances{0, 100, 0, 0});
  }
  w.require_replay_equal();
}

TEST_CASE("pending -> voided", "[domain][two-phase]") {
  World w;
  w.given(pending(1, issuer, alice, 100));
  w.given(pending(2, issuer, alice, 40));
  SECTION("amount left out") {
    const Outcome o = w.when(void_of(3, issuer, 1));
    REQUIRE(o.result == TransferResult::ok);
    CHECK(o.event->kind == TransferKind::void_pending);
    CHECK(o.event->amount == 100);
    CHECK(o.event->pending_amount == 100);
    CHECK(o.event->credit_account == alice);
    CHECK(w.record(issuer, 1).state == TransferState::voided);
    CHECK(w.record(issuer, 3).state == TransferState::voided);
    CHECK(w.balances_of(issuer) == Balances{0, 0, 40, 0});
    CHECK(w.balances_of(alice) == Balances{0, 0, 0, 40});
  }
  SECTION("amount given and equal to the pending amount") {
    CHECK(w.when(void_of(3, issuer, 1, 100)).result == TransferResult::ok);
    CHECK(w.balances_of(issuer) == Balances{0, 0, 40, 0});
  }
  SECTION("amount given and different") {
    CHECK(w.when(void_of(3, issuer, 1, 99)).result ==
          TransferResult::pending_transfer_has_different_fields);
    CHECK(w.when(void_of(3, issuer, 1, 101)).result ==
          TransferResult::pending_transfer_has_different_fields);
    CHECK(w.record(issuer, 1).state == TransferState::pending);
    CHECK(w.balances_of(issuer) == Balances{0, 0, 140, 0});
  }
  w.require_replay_equal();
}

TEST_CASE("pending -> expired by decide_expire", "[domain][two-phase][expiry]") {
  World w;
  const TransferEvent p = w.given(pending(1, issuer, alice, 100, 60));
  CHECK(p.expires_at == t0 + 60 * ns_per_s);
  CHECK(transfer_info(w.record(issuer, 1)).expires_at == t0 + 60 * ns_per_s);
  w.given(pending(2, issuer, alice, 7));  // no timeout: never expires

  w.now = t0 + 60 * ns_per_s - 1;
  CHECK_FALSE(decide_expire(w.at(issuer), 1, w.now).has_value());
  w.now = t0 + 60 * ns_per_s;
  CHECK_FALSE(decide_expire(w.at(issuer), 2, UINT64_MAX).has_value());
  CHECK_FALSE(decide_expire(w.at(issuer), 404, w.now).has_value());

  const std::optional<TransferEvent> e = w.expire(issuer, 1);
  REQUIRE(e.has_value());
  CHECK(e->kind == TransferKind::expire);
  CHECK(e->request.id == 0);
  CHECK(e->request.pending_id == 1);
  CHECK(e->request.debit_account == issuer);
  CHECK(e->debit_account == issuer);
  CHECK(e->credit_account == alice);
  CHECK(e->ledger == ledger_a);
  CHECK(e->code == code_earn);
  CHECK(e->amount == 100);
  CHECK(e->pending_amount == 100);

  CHECK(w.record(issuer, 1).state == TransferState::expired);
  CHECK(w.record(issuer, 1).busy_with == 0);
  CHECK(w.balances_of(issuer) == Balances{0, 0, 7, 0});
  CHECK(w.balances_of(alice) == Balances{0, 0, 0, 7});
  CHECK_FALSE(w.has_record(issuer, 0));  // an expiry is no transfer of its own

  CHECK(w.when(post(3, issuer, 1)).result == TransferResult::pending_transfer_expired);
  CHECK(w.when(void_of(3, issuer, 1)).result == TransferResult::pending_transfer_expired);
  CHECK_FALSE(decide_expire(w.at(issuer), 1, UINT64_MAX).has_value());
  // a retry of the pending transfer itself: its original outcome stands
  CHECK(w.when(pending(1, issuer, alice, 100, 60)).result == TransferResult::exists);
  w.require_replay_equal();
}

TEST_CASE("post or void after expires_at, before the expiry is decided: expired",
          "[domain][two-phase][expiry]") {
  World w;
  w.given(pending(1, issuer, alice, 100, 10));
  const std::uint64_t at = t0 + 10 * ns_per_s;
  w.now = at - 1;
  SECTION("one nanosecond before, the post goes through") {
    CHECK(w.when(post(2, issuer, 1)).result == TransferResult::ok);
    w.now = at;
    CHECK_FALSE(decide_expire(w.at(issuer), 1, w.now).has_value());
  }
  SECTION("at expires_at it is expired, though still pending until decide_expire") {
    w.now = at;
    CHECK(w.when(post(2, issuer, 1)).result == TransferResult::pending_transfer_expired);
    CHECK(w.when(void_of(2, issuer, 1)).result == TransferResult::pending_transfer_expired);
    CHECK(w.record(issuer, 1).state == TransferState::pending);
    CHECK(w.balances_of(issuer) == Balances{0, 0, 100, 0});
    REQUIRE(w.expire(issuer, 1).has_value());
    CHECK(w.balances_of(issuer) == Balances{0, 0, 0, 0});
  }
  SECTION("a timeout past the end of time saturates") {
    World late;
    late.now = UINT64_MAX - ns_per_s;
    const TransferEvent e = late.given(pending(1, issuer, alice, 1, UINT32_MAX));
    CHECK(e.expires_at == UINT64_MAX);
  }
}

TEST_CASE("a pending transfer is resolved once: posting twice, voiding after post, ...",
          "[domain][two-phase]") {
  World w;
  w.given(pending(1, issuer, alice, 100, 60));
  SECTION("posting twice") {
    w.given(post(2, issuer, 1, 10));
    CHECK(w.when(post(3, issuer, 1, 10)).result == TransferResult::pending_transfer_already_posted);
    CHECK(w.when(post(3, issuer, 1)).result == TransferResult::pending_transfer_already_posted);
    SECTION("voiding after post") {
      CHECK(w.when(void_of(3, issuer, 1)).result ==
            TransferResult::pending_transfer_already_posted);
    }
    SECTION("it no longer expires") {
      CHECK_FALSE(decide_expire(w.at(issuer), 1, UINT64_MAX).has_value());
    }
    CHECK(w.balances_of(issuer) == Balances{10, 0, 0, 0});
    CHECK(w.balances_of(alice) == Balances{0, 10, 0, 0});
  }
  SECTION("voiding twice, posting after void") {
    w.given(void_of(2, issuer, 1));
    CHECK(w.when(void_of(3, issuer, 1)).result == TransferResult::pending_transfer_already_voided);
    CHECK(w.when(post(3, issuer, 1)).result == TransferResult::pending_transfer_already_voided);
    CHECK_FALSE(decide_expire(w.at(issuer), 1, UINT64_MAX).has_value());
    CHECK(w.balances_of(issuer) == Balances{0, 0, 0, 0});
  }
  SECTION("expired: the state wins over a later time check") {
    w.now += 60 * ns_per_s;
    REQUIRE(w.expire(issuer, 1).has_value());
    CHECK(w.when(post(3, issuer, 1)).result == TransferResult::pending_transfer_expired);
  }
  w.require_replay_equal();
}

TEST_CASE("post and void: the pending transfer they name", "[domain][two-phase]") {
  World w;
  w.given(single(1, issuer, alice, 100));
  w.given(pending(2, issuer, alice, 50));
  w.given(pending(3, alice, bob, 40));
  w.given(post(4, issuer, 2, 10));
  w.given(pending(5, issuer, alice, 60));

  SECTION("not found") {
    CHECK(w.when(post(9, issuer, 404)).result == TransferResult::pending_transfer_not_found);
    CHECK(w.when(void_of(9, issuer, 404)).result == TransferResult::pending_transfer_not_found);
    // routed to the wrong debit account: alice has no transfer 5
    CHECK(w.when(post(9, alice, 5)).result == TransferResult::pending_transfer_not_found);
  }
  SECTION("not a pending transfer: a single one, or a post") {
    CHECK(w.when(post(9, issuer, 1)).result == TransferResult::not_a_pending_transfer);
    CHECK(w.when(void_of(9, issuer, 1)).result == TransferResult::not_a_pending_transfer);
    CHECK(w.when(post(9, issuer, 4)).result == TransferResult::not_a_pending_transfer);
  }
  SECTION("given fields must match the pending transfer") {
    Transfer t = post(9, issuer, 5);
    t.credit_account = bob;
    CHECK(w.when(t).result == TransferResult::pending_transfer_has_different_fields);
    t = post(9, issuer, 5);
    t.code = code_redeem;
    CHECK(w.when(t).result == TransferResult::pending_transfer_has_different_fields);
    t = void_of(9, issuer, 5);
    t.code = code_redeem;
    CHECK(w.when(t).result == TransferResult::pending_transfer_has_different_fields);
    // A differing ledger is refused earlier (ledger_mismatch) by the pipeline; the debit
    // account's decision alone also refuses it.
    t = post(9, issuer, 5);
    t.ledger = ledger_b;
    CHECK(w.when(t).result == TransferResult::ledger_mismatch);
    const DebitDecision d = w.decide(t);
    CHECK(d.kind == Kind::reject);
    CHECK(d.result == TransferResult::pending_transfer_has_different_fields);
  }
  SECTION("user_data is not compared") {
    Transfer t = post(9, issuer, 5);
    t.user_data = 1234;
    CHECK(w.when(t).result == TransferResult::ok);
    CHECK(w.balances_of(issuer) == Balances{170, 0, 0, 0});
    w.require_replay_equal();
    return;
  }
  SECTION("a larger post amount exceeds the pending amount") {
    CHECK(w.when(post(9, issuer, 5, 61)).result == TransferResult::exceeds_pending_amount);
    CHECK(w.when(post(9, issuer, 5, UINT64_MAX)).result == TransferResult::exceeds_pending_amount);
    // different fields are checked before the amount
    Transfer t = post(9, issuer, 5, 61);
    t.credit_account = bob;
    CHECK(w.when(t).result == TransferResult::pending_transfer_has_different_fields);
  }
  SECTION("the state is checked before expiry by time and before the fields") {
    Transfer t = post(9, issuer, 2, 1000);
    t.credit_account = bob;
    CHECK(w.when(t).result == TransferResult::pending_transfer_already_posted);
  }
  CHECK(w.balances_of(issuer) == Balances{110, 0, 60, 0});
  w.require_replay_equal();
}

// ---------------------------------------------------------------------------------------------
// In-flight transfers: wait, confirm, revert.

TEST_CASE("wait: a command that depends on an in-flight transfer waits for it", "[domain][wait]") {
  World w = world_with_funded_alice();
  SECTION("a retry of an uncommitted transfer") {
    const TransferEvent e = w.begin(single(2, alice, bob, 10));
    const DebitDecision d = w.decide(single(2, alice, bob, 10));
    CHECK(d.kind == Kind::wait);
    CHECK(d.wait_for == 2);
    // even with other fields: the outcome is not known yet
    CHECK(w.decide(single(2, alice, bob, 11)).kind == Kind::wait);
    w.finish(e);
    CHECK(w.decide(single(2, alice, bob, 10)).result == TransferResult::exists);
    CHECK(w.decide(single(2, alice, bob, 11)).result ==
          TransferResult::exists_with_different_fields);
  }
  SECTION("a post or void of an uncommitted pending transfer") {
    const TransferEvent e = w.begin(pending(2, alice, bob, 10));
    DebitDecision d = w.decide(post(3, alice, 2));
    CHECK(d.kind == Kind::wait);
    CHECK(d.wait_for == 2);
    d = w.decide(void_of(3, alice, 2));
    CHECK(d.kind == Kind::wait);
    CHECK(d.wait_for == 2);
    CHECK_FALSE(decide_expire(w.at(alice), 2, UINT64_MAX).has_value());
    w.finish(e);
    CHECK(w.when(post(3, alice, 2)).result == TransferResult::ok);
  }
  SECTION("a command on a pending transfer whose post is in flight") {
    w.given(pending(2, alice, bob, 10, 5));
    const TransferEvent e = w.begin(post(3, alice, 2, 4));
    CHECK(w.record(alice, 2).busy_with == 3);
    CHECK(w.record(alice, 2).state == TransferState::posted);  // tentatively
    CHECK_FALSE(w.record(alice, 3).committed);
    for (const Transfer& t : {post(4, alice, 2), void_of(4, alice, 2), post(4, alice, 2, 99)}) {
      const DebitDecision d = w.decide(t);
      CHECK(d.kind == Kind::wait);
      CHECK(d.wait_for == 3);
    }
    CHECK_FALSE(decide_expire(w.at(alice), 2, UINT64_MAX).has_value());
    w.finish(e);
    CHECK(w.record(alice, 2).busy_with == 0);
    CHECK(w.when(void_of(4, alice, 2)).result == TransferResult::pending_transfer_already_posted);
    CHECK(w.balances_of(alice) == Balances{4, 100, 0, 0});
    CHECK(w.balances_of(bob) == Balances{0, 4, 0, 0});
  }
  SECTION("a command on a pending transfer whose void is in flight") {
    w.given(pending(2, alice, bob, 10));
    const TransferEvent e = w.begin(void_of(3, alice, 2));
    CHECK(w.decide(post(4, alice, 2)).wait_for == 3);
    w.finish(e);
    CHECK(w.when(post(4, alice, 2)).result == TransferResult::pending_transfer_already_voided);
  }
  SECTION("a command on a pending transfer whose expiry is in flight") {
    w.given(pending(2, alice, bob, 10, 5));
    w.now += 5 * ns_per_s;
    const std::optional<TransferEvent> e = decide_expire(w.at(alice), 2, w.now);
    REQUIRE(e.has_value());
    apply_debit(w.at(alice), *e);
    CHECK(w.record(alice, 2).busy_with == 2);
    const DebitDecision d = w.decide(void_of(4, alice, 2));
    CHECK(d.kind == Kind::wait);
    CHECK(d.wait_for == 2);
    CHECK_FALSE(decide_expire(w.at(alice), 2, w.now).has_value());
    confirm_debit(w.at(alice), *e, w.now, 99);
    CHECK(w.record(alice, 2).busy_with == 0);
    CHECK(w.decide(void_of(4, alice, 2)).result == TransferResult::pending_transfer_expired);
  }
  SECTION("unrelated transfers of the same account go on meanwhile") {
    const TransferEvent e = w.begin(single(2, alice, bob, 10));
    CHECK(w.when(single(3, alice, bob, 90)).result == TransferResult::ok);
    // the in-flight debit counts against the limit
    CHECK(w.when(single(4, alice, bob, 1)).result == TransferResult::exceeds_credits);
    w.finish(e);
    CHECK(w.balances_of(alice) == Balances{100, 100, 0, 0});
  }
}

TEST_CASE("confirm_debit makes a tentative record durable at its timestamp and position",
          "[domain][confirm]") {
  World w = world_with_funded_alice();
  w.given(pending(2, alice, bob, 10));
  const TransferEvent e = w.begin(post(3, alice, 2, 6));
  const TransferRecord& r = w.record(alice, 3);
  CHECK_FALSE(r.committed);
  CHECK(r.position == 0);
  CHECK(r.event.timestamp == 0);
  CHECK(w.record(alice, 2).busy_with == 3);
  confirm_debit(w.at(alice), e, 123456, 42);
  CHECK(w.record(alice, 3).committed);
  CHECK(w.record(alice, 3).event.timestamp == 123456);
  CHECK(w.record(alice, 3).position == 42);
  CHECK(w.record(alice, 2).busy_with == 0);
  CHECK(w.record(alice, 2).state == TransferState::posted);
  CHECK(transfer_info(w.record(alice, 3)).timestamp == 123456);
  CHECK(transfer_info(w.record(alice, 3)).position == 42);
  // the pending record keeps its own timestamp and position
  CHECK(w.record(alice, 2).position == 2);
}

TEST_CASE("revert_debit restores the exact previous state, for every kind", "[domain][revert]") {
  World w = world_with_funded_alice();  // alice: credits 100
  w.given(pending(2, alice, bob, 30, 10));
  w.given(pending(3, alice, bob, 20));
  w.given(single(4, alice, bob, 5));
  AccountState& a = w.at(alice);
  const AccountState before = a;
  REQUIRE(balances(before) == Balances{5, 100, 50, 0});

  const auto apply_then_revert = [&](const TransferEvent& e) {
    apply_debit(a, e);
    CHECK_FALSE(same_state(a, before));
    revert_debit(a, e);
    CHECK(same_state(a, before));
    CHECK(balances(a) == Balances{5, 100, 50, 0});
  };
  SECTION("single") {
    const DebitDecision d = w.decide(single(9, alice, bob, 7));
    REQUIRE(d.kind == Kind::accept);
    apply_then_revert(d.event);
  }
  SECTION("pending") {
    const DebitDecision d = w.decide(pending(9, alice, bob, 7, 3));
    REQUIRE(d.kind == Kind::accept);
    apply_then_revert(d.event);
  }
  SECTION("post, full and partial") {
    DebitDecision d = w.decide(post(9, alice, 2));
    REQUIRE(d.kind == Kind::accept);
    apply_then_revert(d.event);
    d = w.decide(post(9, alice, 2, 1));
    REQUIRE(d.kind == Kind::accept);
    apply_then_revert(d.event);
  }
  SECTION("void") {
    const DebitDecision d = w.decide(void_of(9, alice, 3));
    REQUIRE(d.kind == Kind::accept);
    apply_then_revert(d.event);
  }
  SECTION("expire") {
    const std::optional<TransferEvent> e = decide_expire(a, 2, t0 + 10 * ns_per_s);
    REQUIRE(e.has_value());
    apply_then_revert(*e);
  }
  // after any revert the account goes on as if nothing happened
  CHECK(w.when(post(9, alice, 2)).result == TransferResult::ok);
  CHECK(w.balances_of(alice) == Balances{35, 100, 20, 0});
  w.require_replay_equal();
}

TEST_CASE("evolve applies a committed event to whichever side the account is on",
          "[domain][evolve]") {
  AccountState debit;
  debit.account.spec.id = issuer;
  debit.account.spec.ledger = ledger_a;
  AccountState credit;
  credit.account.spec.id = alice;
  credit.account.spec.ledger = ledger_a;
  credit.account.spec.flags = account_flags::debits_must_not_exceed_credits;

  TransferEvent p;
  p.request = pending(1, issuer, alice, 50, 10);
  p.kind = TransferKind::pending;
  p.debit_account = issuer;
  p.credit_account = alice;
  p.ledger = ledger_a;
  p.code = code_earn;
  p.amount = 50;
  p.expires_at = t0 + 10 * ns_per_s;
  p.timestamp = t0;
  evolve(debit, p, 7);
  evolve(credit, p, 7);
  CHECK(balances(debit) == Balances{0, 0, 50, 0});
  CHECK(balances(credit) == Balances{0, 0, 0, 50});
  REQUIRE(debit.transfers.count(1) == 1);
  CHECK(debit.transfers.at(1).committed);
  CHECK(debit.transfers.at(1).position == 7);
  CHECK(debit.transfers.at(1).event.timestamp == t0);
  CHECK(debit.transfers.at(1).state == TransferState::pending);
  CHECK(credit.transfers.empty());

  TransferEvent q = p;
  q.request = post(2, issuer, 1, 20);
  q.kind = TransferKind::post;
  q.amount = 20;
  q.pending_amount = 50;
  q.expires_at = 0;
  q.timestamp = t0 + 1;
  evolve(debit, q, 8);
  evolve(credit, q, 8);
  CHECK(balances(debit) == Balances{20, 0, 0, 0});
  CHECK(balances(credit) == Balances{0, 20, 0, 0});
  CHECK(debit.transfers.at(1).state == TransferState::posted);
  CHECK(debit.transfers.at(1).busy_with == 0);
  CHECK(debit.transfers.at(2).position == 8);

  // An account on neither side is left alone.
  AccountState other;
  other.account.spec.id = bob;
  evolve(other, q, 9);
  CHECK(balances(other) == Balances{0, 0, 0, 0});
  CHECK(other.transfers.empty());
}

// ---------------------------------------------------------------------------------------------
// Accounts and ledgers.

TEST_CASE("validate_account: every result it answers", "[domain][accounts]") {
  AccountSpec ok;
  ok.id = 1;
  ok.ledger = 1;
  ok.kind = AccountKind::member;
  ok.flags = account_flags::debits_must_not_exceed_credits;
  ok.owner = "alice";
  CHECK(validate_account(ok) == AccountResult::ok);

  AccountSpec s = ok;
  s.flags = 0;
  CHECK(validate_account(s) == AccountResult::ok);
  s.flags = account_flags::credits_must_not_exceed_debits;
  s.kind = AccountKind::system;
  CHECK(validate_account(s) == AccountResult::ok);
  s = ok;
  s.owner = std::string(owner_bytes_max, 'o');
  CHECK(validate_account(s) == AccountResult::ok);

  s = ok;
  s.id = 0;
  CHECK(validate_account(s) == AccountResult::id_must_not_be_zero);
  s = ok;
  s.flags =
      account_flags::debits_must_not_exceed_credits | account_flags::credits_must_not_exceed_debits;
  CHECK(validate_account(s) == AccountResult::flags_are_mutually_exclusive);
  s = ok;
  s.flags = account_flags::closed;
  CHECK(validate_account(s) == AccountResult::flags_invalid);
  s.flags = 1U << 7;
  CHECK(validate_account(s) == AccountResult::flags_invalid);
  s.flags = account_flags::all;  // both limits and closed: the bad bit is reported first
  CHECK(validate_account(s) == AccountResult::flags_invalid);
  s = ok;
  s.owner = std::string(owner_bytes_max + 1, 'o');
  CHECK(validate_account(s) == AccountResult::owner_too_long);
  s = ok;
  s.kind = static_cast<AccountKind>(3);
  CHECK(validate_account(s) == AccountResult::flags_invalid);
  s = ok;
  s.id = 0;
  s.owner = std::string(owner_bytes_max + 1, 'o');
  CHECK(validate_account(s) == AccountResult::id_must_not_be_zero);
}

TEST_CASE("validate_ledger: every result it answers", "[domain][ledgers]") {
  Ledger ok;
  ok.id = 1;
  ok.code = "MALL_2";
  ok.name = "Mall points";
  CHECK(validate_ledger(ok) == LedgerResult::ok);
  Ledger l = ok;
  l.code = std::string(ledger_code_bytes_max, 'Z');
  CHECK(validate_ledger(l) == LedgerResult::ok);
  l.name = std::string(ledger_name_bytes_max, 'n');
  CHECK(validate_ledger(l) == LedgerResult::ok);

  l = ok;
  l.id = 0;
  CHECK(validate_ledger(l) == LedgerResult::id_must_not_be_zero);
  for (const char* code : {"", "mall", "MALL-2", "MA LL", "MALL\xC3\x84", "ABCDEFGHIJKLMNOPQ"}) {
    INFO("code '" << code << "'");
    l = ok;
    l.code = code;
    CHECK(validate_ledger(l) == LedgerResult::code_invalid);
  }
  l = ok;
  l.name = std::string(ledger_name_bytes_max + 1, 'n');
  CHECK(validate_ledger(l) == LedgerResult::name_too_long);
  l.code = "bad";
  CHECK(validate_ledger(l) == LedgerResult::code_invalid);
}

// ---------------------------------------------------------------------------------------------
// Every TransferResult, one scenario each.

TEST_CASE("every TransferResult code is reachable from the domain functions",
          "[domain][coverage]") {
  std::set<TransferResult> reached;
  const auto expect = [&](TransferResult got, TransferResult want) {
    INFO("expected " << to_string(want));
    CHECK(got == want);
    if (got == want) reached.insert(got);
  };
  World w;
  // ok, exists, exists_with_different_fields
  expect(w.when(single(1, issuer, alice, 100)).result, TransferResult::ok);
  expect(w.when(single(1, issuer, alice, 100)).result, TransferResult::exists);
  expect(w.when(single(1, issuer, alice, 99)).result, TransferResult::exists_with_different_fields);
  // the item's fields
  Transfer t = single(0, issuer, alice, 1);
  expect(w.when(t).result, TransferResult::id_must_not_be_zero);
  expect(w.when(single(2, issuer, alice, 0)).result, TransferResult::amount_must_not_be_zero);
  expect(w.when(single(2, alice, alice, 1)).result, TransferResult::accounts_must_be_different);
  t = single(2, issuer, alice, 1);
  t.flags = transfer_flags::pending | transfer_flags::void_pending;
  expect(w.when(t).result, TransferResult::flags_are_mutually_exclusive);
  expect(w.when(post(2, issuer, 0)).result, TransferResult::pending_id_must_not_be_zero);
  t = single(2, issuer, alice, 1);
  t.pending_id = 1;
  expect(w.when(t).result, TransferResult::pending_id_must_be_zero);
  expect(w.when(post(2, issuer, 2)).result, TransferResult::pending_id_must_be_different);
  t = single(2, issuer, alice, 1);
  t.timeout_s = 30;
  expect(w.when(t).result, TransferResult::timeout_reserved_for_pending_transfer);
  t = single(2, issuer, alice, 1);
  t.code = 0;
  expect(w.when(t).result, TransferResult::code_must_not_be_zero);
  expect(w.when(single(2, issuer, alice, 1, 0)).result, TransferResult::ledger_must_not_be_zero);
  expect(w.when(single(2, issuer, 0, 1)).result, TransferResult::credit_account_must_not_be_zero);
  expect(w.when(single(2, 0, alice, 1)).result, TransferResult::debit_account_must_not_be_zero);
  // the ids and the code of the engine's workflows
  expect(w.when(single(workflow_transfer_id_min | 2, issuer, alice, 1)).result,
         TransferResult::id_reserved);
  t = single(2, issuer, alice, 1);
  t.code = exchange_transfer_code;
  expect(w.when(t).result, TransferResult::code_reserved);
  t = single(2, issuer, alice, 1);
  t.flags = 1U << 8;
  expect(w.when(t).result, TransferResult::unknown_flags);
  // the accounts
  expect(w.when(single(2, missing, alice, 1)).result, TransferResult::debit_account_not_found);
  expect(w.when(single(2, issuer, missing, 1)).result, TransferResult::credit_account_not_found);
  expect(w.when(single(2, issuer, b_member, 1)).result, TransferResult::ledger_mismatch);
  // balance limits and overflow
  expect(w.when(single(2, alice, bob, 101)).result, TransferResult::exceeds_credits);
  expect(w.when(single(2, alice, escrow, 1)).result, TransferResult::exceeds_debits);
  expect(w.when(single(2, issuer, bob, max)).result, TransferResult::overflow);
  // closed
  REQUIRE(w.close(bob) == CloseResult::ok);
  expect(w.when(single(2, alice, bob, 1)).result, TransferResult::account_closed);
  // the pending transfer of a post or void
  w.given(pending(10, issuer, alice, 50));
  w.given(pending(11, issuer, alice, 50));
  w.given(pending(12, issuer, alice, 50, 1));
  w.given(post(13, issuer, 10));
  w.given(void_of(14, issuer, 11));
  expect(w.when(post(20, issuer, 404)).result, TransferResult::pending_transfer_not_found);
  expect(w.when(post(20, issuer, 1)).result, TransferResult::not_a_pending_transfer);
  expect(w.when(post(20, issuer, 10)).result, TransferResult::pending_transfer_already_posted);
  expect(w.when(post(20, issuer, 11)).result, TransferResult::pending_transfer_already_voided);
  expect(w.when(void_of(20, issuer, 12, 49)).result,
         TransferResult::pending_transfer_has_different_fields);
  expect(w.when(post(20, issuer, 12, 51)).result, TransferResult::exceeds_pending_amount);
  w.now += ns_per_s;
  expect(w.when(post(20, issuer, 12)).result, TransferResult::pending_transfer_expired);

  std::string missed;
  for (std::uint32_t code = 0; code < transfer_result_count; ++code) {
    if (reached.count(static_cast<TransferResult>(code)) == 0) {
      missed += std::string(to_string(static_cast<TransferResult>(code))) + " ";
    }
  }
  INFO("not reached: " << missed);
  CHECK(reached.size() == transfer_result_count);
  w.require_replay_equal();
}

// ---------------------------------------------------------------------------------------------
// The record cache: records leave memory only once the read models include their last change.

TEST_CASE("records_cap shares the records budget among the accounts in memory", "[domain]") {
  // No budget: the per-account limit alone.
  CHECK(records_cap(0, 100'000, 1024) == 1024);
  // A budget of 4M over 100k accounts: 40 each.
  CHECK(records_cap(4'000'000, 100'000, 1024) == 40);
  // Few accounts: the per-account limit, not the whole budget.
  CHECK(records_cap(4'000'000, 10, 1024) == 1024);
  CHECK(records_cap(4'000'000, 0, 1024) == 1024);
  // More accounts than the budget: at least 2 each (evicting to half keeps one).
  CHECK(records_cap(1000, 1'000'000, 1024) == 2);
  // The limit below 2 wins.
  CHECK(records_cap(1000, 1'000'000, 1) == 1);
  // No overflow past 32 bits.
  CHECK(records_cap(UINT64_MAX, 1, UINT32_MAX) == UINT32_MAX);
}

TEST_CASE("evict_records: only committed, idle records the read models include, oldest first",
          "[domain][records]") {
  World w = world_with_funded_alice();                                          // position 1
  for (TransferId id = 2; id <= 10; ++id) w.given(single(id, issuer, bob, 1));  // positions 2-10
  AccountState& is = w.at(issuer);
  REQUIRE(is.transfers.size() == 10);
  CHECK(evict_records(is, 5, 0) == 5);  // positions 1-5 are in the read models
  CHECK_FALSE(is.records_complete());
  // Ids 1-5 left (the funding transfer is id 1): only those may be outside memory.
  CHECK(is.outside_id_max == 5);
  CHECK(is.may_be_outside(5));
  CHECK_FALSE(is.may_be_outside(6));   // in memory
  CHECK_FALSE(is.may_be_outside(11));  // above every evicted id: a new id
  CHECK_FALSE(is.may_be_outside(0));
  CHECK_FALSE(w.has_record(issuer, 5));
  CHECK(w.has_record(issuer, 6));
  CHECK(evict_records(is, 100, 3) == 2);  // keeps 3
  CHECK(is.transfers.size() == 3);

  // A pending transfer with a post in flight stays (busy), and so does the post (uncommitted).
  const TransferEvent p = w.given(pending(20, alice, bob, 10));
  const TransferEvent posting = w.begin(post(21, alice, 20));
  AccountState& a = w.at(alice);
  CHECK(evict_records(a, 1000, 0) == 0);
  CHECK(w.has_record(alice, 20));
  CHECK(w.has_record(alice, 21));
  const Outcome done = w.finish(posting);
  // The post changed the pending record: it stays until the read models include the post.
  CHECK(evict_records(a, done.position - 1, 0) == 0);
  CHECK(w.has_record(alice, 20));
  CHECK(evict_records(a, done.position, 0) == 2);
  CHECK(a.transfers.empty());
  (void)p;
}

TEST_CASE("a record loaded back from its read-model form decides like the original",
          "[domain][records]") {
  World w = world_with_funded_alice();
  const TransferEvent p = w.given(pending(20, alice, bob, 10));
  const TransferRecord original = w.record(alice, 20);
  AccountState& a = w.at(alice);
  const TransferInfo info = transfer_info(original);
  a.transfers.clear();
  a.outside_id_max = UINT64_MAX;  // as loaded from the read models
  load_record(a, info);
  const TransferRecord& loaded = w.record(alice, 20);
  CHECK(loaded.event.request == original.event.request);
  CHECK(loaded.event.kind == TransferKind::pending);
  CHECK(loaded.state == TransferState::pending);
  CHECK(loaded.position == original.position);
  CHECK(loaded.committed);
  // A retry answers the original outcome; a post of it works once.
  const Outcome retry = w.when(pending(20, alice, bob, 10));
  CHECK(retry.result == TransferResult::exists);
  CHECK(retry.position == original.position);
  CHECK(w.when(post(21, alice, 20)).result == TransferResult::ok);
  CHECK(w.when(post(22, alice, 20)).result == TransferResult::pending_transfer_already_posted);
  CHECK(w.balances_of(alice).debits_pending == 0);
  (void)p;
}

TEST_CASE("the credit fast path's rules: who must decide a credit, and the room it takes",
          "[domain][fast-credit]") {
  AccountSpec plain{5, 1, AccountKind::member, account_flags::debits_must_not_exceed_credits,
                    0, ""};
  AccountSpec limited{6, 1, AccountKind::system, account_flags::credits_must_not_exceed_debits,
                      0, ""};
  TransferEvent e;
  e.amount = 40;
  e.pending_amount = 50;
  for (TransferKind kind : {TransferKind::single, TransferKind::pending}) {
    e.kind = kind;
    CHECK_FALSE(credit_needs_owner(plain, e));
    CHECK(credit_needs_owner(limited, e));  // its balance limit is on the credit side
    CHECK(credit_room_needed(e) == 40);
  }
  for (TransferKind kind : {TransferKind::post, TransferKind::void_pending, TransferKind::expire}) {
    e.kind = kind;  // they move pending credits: never more posted + pending
    CHECK_FALSE(credit_needs_owner(plain, e));
    CHECK_FALSE(credit_needs_owner(limited, e));
    CHECK(credit_room_needed(e) == 0);
  }
  Account a;
  CHECK(credit_room(a) == amount_sum_max);
  a.credits_posted = 100;
  a.credits_pending = 23;
  CHECK(credit_room(a) == amount_sum_max - 123);
  a.credits_posted = amount_sum_max - 23;
  CHECK(credit_room(a) == 0);
}

TEST_CASE("IdMap agrees with a std::map under random emplace, erase and lookup",
          "[domain][records]") {
  // Ids from a small range collide in the index and wrap around its end, the cases
  // backward-shift deletion must get right; sequential ids are the bench's.
  for (const TransferId range : {TransferId{40}, TransferId{5000}}) {
    IdMap<std::uint64_t> map;
    std::map<TransferId, std::uint64_t> reference;
    // Where each id was put (place_of): erases since then make many of these stale.
    std::map<TransferId, std::uint32_t> hints;
    std::uint64_t rng = 0x2545F4914F6CDD1DULL;
    auto next = [&rng] {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      return rng;
    };
    for (int step = 0; step < 20000; ++step) {
      const TransferId id = 1 + next() % range;
      const std::uint64_t op = next() % 3;
      if (op == 0) {
        const auto [it, added] = map.emplace(id, step);
        const bool ref_added = reference.emplace(id, step).second;
        REQUIRE(added == ref_added);
        REQUIRE(it->first == id);
        REQUIRE(it->second == reference.at(id));
        hints[id] = map.place_of(it);
        REQUIRE(map.find_hinted(id, hints[id]) == it);
      } else if (op == 1) {
        REQUIRE(map.erase(id) == reference.erase(id));
      } else {
        const auto it = map.find(id);
        const auto ref = reference.find(id);
        REQUIRE((it == map.end()) == (ref == reference.end()));
        if (ref != reference.end()) REQUIRE(it->second == ref->second);
        // A hint, stale or not, or a wrong one, finds what find finds.
        REQUIRE(map.find_hinted(id, hints[id]) == it);
        const auto wrong = static_cast<std::uint32_t>(next() % (map.size() + 3));
        REQUIRE(map.find_hinted(id, wrong) == it);
      }
      REQUIRE(map.size() == reference.size());
    }
    // Every id is still reachable, and iteration visits each record once.
    std::set<TransferId> seen;
    for (const auto& [id, value] : map) {
      REQUIRE(seen.insert(id).second);
      REQUIRE(reference.at(id) == value);
      REQUIRE(map.count(id) == 1);
    }
    CHECK(seen.size() == reference.size());
    for (const auto& [id, value] : reference) CHECK(map.at(id) == value);
    // find_many answers what find answers, for present, absent and repeated ids.
    std::vector<std::uint64_t> ids;
    for (TransferId id = 0; id <= range + 5; ++id) ids.push_back(id);
    for (int k = 0; k < 50; ++k) ids.push_back(1 + next() % range);
    std::vector<IdMap<std::uint64_t>::iterator> found(ids.size());
    map.find_many(ids.data(), ids.size(), found.data());
    for (std::size_t k = 0; k < ids.size(); ++k) REQUIRE(found[k] == map.find(ids[k]));
    CHECK(map.place_of(map.end()) == 0);
    map.clear();
    map.find_many(ids.data(), ids.size(), found.data());
    for (const auto& it : found) CHECK(it == map.end());
    CHECK(map.empty());
    CHECK(map.find(1) == map.end());
  }
  // Mostly emptied, the index shrinks (a rebuild): what is left is still found, erasing while
  // walking visits every value once, and the map grows again from there.
  IdMap<std::uint64_t> map;
  for (TransferId id = 1; id <= 3000; ++id) REQUIRE(map.emplace(id * 7919, id).second);
  for (TransferId id = 1; id <= 2990; ++id) REQUIRE(map.erase(id * 7919) == 1);
  REQUIRE(map.size() == 10);
  for (TransferId id = 2991; id <= 3000; ++id) REQUIRE(map.at(id * 7919) == id);
  CHECK(map.find(7919) == map.end());
  std::set<std::uint64_t> walked;
  for (auto it = map.begin(); it != map.end();) {
    walked.insert(it->second);
    it = it->second % 2 == 0 ? map.erase(it) : it + 1;  // erase the even ones as we go
  }
  CHECK(walked.size() == 10);
  REQUIRE(map.size() == 5);
  for (TransferId id = 2991; id <= 3000; ++id) CHECK(map.count(id * 7919) == (id % 2 == 1 ? 1 : 0));
  for (TransferId id = 1; id <= 100; ++id) REQUIRE(map.emplace(id, id).second);
  CHECK(map.size() == 105);
  for (TransferId id = 1; id <= 100; ++id) CHECK(map.at(id) == id);
}
