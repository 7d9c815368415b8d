// Given/when/then tests of expiry lots (src/domain/lots.*): a credit adds a lot that expires at
// the start of the UTC day after earning day + expiry_days, credits of one day merge, debits
// consume the oldest lots first, and what is due is what expired lots still hold.

#include <catch2/catch.hpp>
#include <cstdint>

#include "domain/decide.hpp"
#include "domain/lots.hpp"

namespace {

using namespace pointex::domain;

constexpr std::uint64_t ns_per_s = 1'000'000'000ULL;
// 2023-11-14 00:00:00 UTC, a day boundary.
constexpr std::uint64_t day0 = 19'675ULL * lot_day_ns;
constexpr std::uint64_t days30 = 30ULL * lot_day_ns;

/// What the lots hold in all.
std::uint64_t lots_total(const Lots& lots) {
  std::uint64_t total = 0;
  for (const Lot& lot : lots) total += lot.amount;
  return total;
}

}  // namespace

TEST_CASE("lots: a credit expires at the start of the day after earning day plus expiry days",
          "[lots]") {
  REQUIRE(lot_expiry_ns(0) == 0);
  REQUIRE(lot_expiry_ns(30) == days30);
  REQUIRE(lot_expiry_ns(UINT32_MAX) == lot_expiry_ns(lot_expiry_days_max));
  // Earned at noon: due at the end of day 30 after, never earlier than t + 30 days.
  const std::uint64_t noon = day0 + 12 * 3600 * ns_per_s;
  REQUIRE(lot_expires_at(noon, days30) == day0 + days30 + lot_day_ns);
  REQUIRE(lot_expires_at(noon, days30) >= noon + days30);
  // Earned at the first instant of a day, and at its last.
  REQUIRE(lot_expires_at(day0, days30) == day0 + days30 + lot_day_ns);
  REQUIRE(lot_expires_at(day0 + lot_day_ns - 1, days30) == day0 + days30 + lot_day_ns);
}

TEST_CASE("lots: credits of one UTC day merge into one lot, the next day starts another",
          "[lots]") {
  Lots lots;
  add_lot(lots, 100, day0 + 1, days30);
  add_lot(lots, 50, day0 + 5 * 3600 * ns_per_s, days30);
  REQUIRE(lots.size() == 1);
  REQUIRE(lots[0].amount == 150);
  add_lot(lots, 7, day0 + lot_day_ns, days30);
  REQUIRE(lots.size() == 2);
  REQUIRE(lots[1] == Lot{7, day0 + days30 + 2 * lot_day_ns});
  add_lot(lots, 0, day0 + 3 * lot_day_ns, days30);  // nothing
  REQUIRE(lots.size() == 2);
  REQUIRE(lots_valid(lots));
  REQUIRE(lots_total(lots) == 157);
}

TEST_CASE("lots: a debit consumes the oldest lot first, across lots, leaving a partial lot",
          "[lots]") {
  Lots lots;
  add_lot(lots, 100, day0, days30);
  add_lot(lots, 200, day0 + lot_day_ns, days30);
  add_lot(lots, 300, day0 + 2 * lot_day_ns, days30);

  SECTION("within the oldest lot") {
    REQUIRE(consume_lots(lots, 40) == 40);
    REQUIRE(lots.size() == 3);
    REQUIRE(lots[0].amount == 60);
  }
  SECTION("exactly the oldest lot") {
    REQUIRE(consume_lots(lots, 100) == 100);
    REQUIRE(lots.size() == 2);
    REQUIRE(lots[0].amount == 200);
  }
  SECTION("spanning two lots into the third") {
    REQUIRE(consume_lots(lots, 350) == 350);
    REQUIRE(lots.size() == 1);
    REQUIRE(lots[0] == Lot{250, day0 + days30 + 3 * lot_day_ns});
  }
  SECTION("more than the lots hold (an account without the debit limit)") {
    REQUIRE(consume_lots(lots, 1000) == 600);
    REQUIRE(lots.empty());
    // Going negative consumes nothing more, and a later credit starts a fresh lot.
    REQUIRE(consume_lots(lots, 5) == 0);
    add_lot(lots, 10, day0 + 3 * lot_day_ns, days30);
    REQUIRE(lots.size() == 1);
    REQUIRE(lots[0].amount == 10);
  }
  REQUIRE(lots_valid(lots));
}

TEST_CASE("lots: due sums the lots expired at now, nothing before the first is due", "[lots]") {
  Lots lots;
  add_lot(lots, 100, day0, days30);
  add_lot(lots, 200, day0 + lot_day_ns, days30);
  const std::uint64_t first_due = day0 + days30 + lot_day_ns;
  REQUIRE(lots_due(lots, first_due - 1) == 0);
  REQUIRE(lots_due(lots, first_due) == 100);
  REQUIRE(lots_due(lots, first_due + lot_day_ns - 1) == 100);
  REQUIRE(lots_due(lots, first_due + lot_day_ns) == 300);
  // Expiring what is due consumes the due lots (they are the oldest).
  REQUIRE(consume_lots(lots, lots_due(lots, first_due)) == 100);
  REQUIRE(lots_due(lots, first_due) == 0);
  REQUIRE(lots_total(lots) == 200);
}

TEST_CASE("lots: the invariants reject empty and unordered lots", "[lots]") {
  REQUIRE(lots_valid({}));
  REQUIRE(lots_valid({{1, 1}, {1, 2}}));
  REQUIRE_FALSE(lots_valid({{0, 1}}));
  REQUIRE_FALSE(lots_valid({{1, 2}, {1, 2}}));
  REQUIRE_FALSE(lots_valid({{1, 3}, {1, 2}}));
}

namespace {

pointex::domain::TransferEvent event_of(pointex::TransferKind kind, pointex::AccountId debit,
                                        pointex::AccountId credit, std::uint64_t amount,
                                        std::uint64_t timestamp) {
  pointex::domain::TransferEvent e;
  e.kind = kind;
  e.debit_account = debit;
  e.credit_account = credit;
  e.amount = amount;
  e.pending_amount = amount;
  e.timestamp = timestamp;
  return e;
}

}  // namespace

TEST_CASE("lots: which events change them, for members of a ledger with expiry_days only",
          "[lots]") {
  using pointex::AccountKind;
  using pointex::TransferKind;
  pointex::Ledger ledger{1, "MALL", "Mall", 30, 0};
  pointex::Account member;
  member.spec = {7, 1, AccountKind::member, 0, 0, "m"};
  const std::uint64_t expiry = account_lot_expiry_ns(member.spec, ledger);
  REQUIRE(expiry == days30);
  // Issuers and system accounts, and members of a ledger that never expires, have none.
  pointex::AccountSpec issuer{8, 1, AccountKind::issuer, 0, 0, "i"};
  CHECK(account_lot_expiry_ns(issuer, ledger) == 0);
  pointex::Ledger never{1, "MALL", "Mall", 0, 0};
  CHECK(account_lot_expiry_ns(member.spec, never) == 0);

  const std::uint64_t due = day0 + days30 + lot_day_ns;
  // Pending, void and expiry of a pending credit change nothing; a post adds what it posts.
  for (const TransferKind kind :
       {TransferKind::pending, TransferKind::void_pending, TransferKind::expire}) {
    apply_lots(member, expiry, event_of(kind, 8, 7, 50, day0));
  }
  CHECK(member.expiring.empty());
  apply_lots(member, expiry, event_of(TransferKind::post, 8, 7, 40, day0));
  apply_lots(member, expiry, event_of(TransferKind::single, 8, 7, 10, day0 + 1));
  CHECK(member.expiring == Lots{{50, due}});
  // Pending, void and expiry of a pending debit change nothing; a post or single consumes.
  for (const TransferKind kind :
       {TransferKind::pending, TransferKind::void_pending, TransferKind::expire}) {
    apply_lots(member, expiry, event_of(kind, 7, 8, 30, day0 + 2));
  }
  CHECK(member.expiring == Lots{{50, due}});
  apply_lots(member, expiry, event_of(TransferKind::post, 7, 8, 30, day0 + 3));
  apply_lots(member, expiry, event_of(TransferKind::single, 7, 8, 5, day0 + 4));
  CHECK(member.expiring == Lots{{15, due}});
  // With no expiry duration nothing changes.
  apply_lots(member, 0, event_of(TransferKind::single, 8, 7, 99, day0 + 5));
  CHECK(member.expiring == Lots{{15, due}});
}
