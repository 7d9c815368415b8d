#include "domain/rebate.hpp"

#include <algorithm>
#include <set>

#include "domain/assert.hpp"
#include "domain/exchange.hpp"
#include "domain/order.hpp"
#include "domain/varint.hpp"

namespace pointex::domain {
namespace {

__extension__ typedef unsigned __int128 u128;

constexpr std::uint8_t rules_version = 1;
constexpr std::uint8_t purchase_data_version = 1;
constexpr std::uint32_t bps_one = 10'000;
/// A rate may give at most one point per minor unit; a campaign at most 100x.
constexpr std::uint32_t rate_bps_max = 10'000;
constexpr std::uint32_t multiplier_bps_max = 1'000'000;
constexpr std::size_t currency_bytes = 3;

bool read_version(Reader& in, std::uint8_t want) {
  const std::uint8_t version = in.u8();
  if (in.error() != DecodeError::none) return false;
  if (version != want) {
    in.fail(DecodeError::unknown_version);
    return false;
  }
  return true;
}

std::uint64_t saturate(u128 v) {
  return v > UINT64_MAX ? UINT64_MAX : static_cast<std::uint64_t>(v);
}

/// Points still due when `refunded` of `amount` is refunded.
std::uint64_t due_after(std::uint64_t points, std::uint64_t amount, std::uint64_t refunded) {
  POINTEX_ASSERT(refunded <= amount && amount != 0);
  return static_cast<std::uint64_t>(static_cast<u128>(points) * (amount - refunded) / amount);
}

bool covers(const Campaign& c, const std::string& category, std::uint64_t now_ns) {
  if (now_ns < c.starts_at || now_ns >= c.ends_at) return false;
  return c.categories.empty() ||
         std::find(c.categories.begin(), c.categories.end(), category) != c.categories.end();
}

DecodeError fold_step(const ProcessStepRecord& s, bool first, PurchaseState* st) {
  if (s.step > static_cast<std::uint8_t>(PurchaseStep::clawed_back)) {
    return DecodeError::invalid_field;
  }
  const auto step = static_cast<PurchaseStep>(s.step);
  if (first != (step == PurchaseStep::started)) return DecodeError::invalid_field;
  switch (step) {
    case PurchaseStep::started: {
      const DecodeError err = decode_step(s.data, &st->started);
      if (err != DecodeError::none) return err;
      st->points_due = st->started.points;
      st->created_at = s.timestamp;
      return DecodeError::none;
    }
    case PurchaseStep::credited:
    case PurchaseStep::completed: {
      Reader in(s.data);
      read_version(in, purchase_data_version);
      const DecodeError err = in.finish();
      if (err != DecodeError::none) return err;
      if (step == PurchaseStep::credited) {
        if (st->credited || st->decided || st->started.points == 0) {
          return DecodeError::invalid_field;
        }
        st->credited = true;
      } else {
        if (!st->decided || st->completed) return DecodeError::invalid_field;
        st->completed = true;
      }
      return DecodeError::none;
    }
    case PurchaseStep::refunded: {
      PurchaseRefunded r;
      const DecodeError err = decode_step(s.data, &r);
      if (err != DecodeError::none) return err;
      if (st->refunds.size() >= purchase_refunds_max ||
          r.amount > st->started.request.amount - st->refunded_amount) {
        return DecodeError::invalid_field;
      }
      for (const RefundInfo& e : st->refunds) {
        if (e.id == r.id) return DecodeError::invalid_field;
      }
      // Inside the window a refund reduces; after the decision it may claw back.
      if ((r.points_reduced != 0 && st->decided) || (r.clawback_points != 0 && !st->decided) ||
          r.points_reduced > st->points_due) {
        return DecodeError::invalid_field;
      }
      RefundInfo info;
      info.id = r.id;
      info.amount = r.amount;
      info.timestamp = s.timestamp;
      info.points_reduced = r.points_reduced;
      info.clawback = r.clawback_points != 0;
      info.clawback_points = r.clawback_points;
      info.done = r.clawback_points == 0;
      if (info.clawback) {
        info.clawback_transfer_id = workflow_transfer_id_min | clawback_id_bit | s.position;
        ++st->clawbacks_open;
      }
      st->refunds.push_back(info);
      st->refunded_amount += r.amount;
      st->points_due -= r.points_reduced;
      return DecodeError::none;
    }
    case PurchaseStep::decided: {
      if (st->decided) return DecodeError::invalid_field;
      const DecodeError err = decode_step(s.data, &st->decision);
      if (err != DecodeError::none) return err;
      const PurchaseDecided& d = st->decision;
      // Posting needs the credit; a refused credit means there is none.
      if ((d.status == PurchaseStatus::available || d.status == PurchaseStatus::refunded) &&
          !st->credited) {
        return DecodeError::invalid_field;
      }
      if (d.status == PurchaseStatus::failed && st->credited) return DecodeError::invalid_field;
      if (d.status == PurchaseStatus::nothing_earned && st->started.points != 0) {
        return DecodeError::invalid_field;
      }
      if (d.status == PurchaseStatus::available &&
          (d.points_posted != st->points_due || d.points_posted == 0)) {
        return DecodeError::invalid_field;
      }
      st->decided = true;
      return DecodeError::none;
    }
    case PurchaseStep::clawed_back: {
      PurchaseClawedBack c;
      const DecodeError err = decode_step(s.data, &c);
      if (err != DecodeError::none) return err;
      if (!st->completed) return DecodeError::invalid_field;
      // Clawbacks are done in refund order: the first one open.
      for (RefundInfo& e : st->refunds) {
        if (e.done) continue;
        if (e.id != c.refund_id || c.taken > e.clawback_points ||
            c.taken + c.shortfall != e.clawback_points) {
          return DecodeError::invalid_field;
        }
        e.clawed_back = c.taken;
        e.shortfall = c.shortfall;
        e.done = true;
        --st->clawbacks_open;
        return DecodeError::none;
      }
      return DecodeError::invalid_field;
    }
  }
  return DecodeError::invalid_field;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Rules.

bool valid_category(std::string_view category) {
  if (category.empty() || category.size() > rebate_category_bytes_max) return false;
  for (const char c : category) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

RulesResult validate_rules(const EarningRules& r) {
  if (!valid_currency(r.currency)) return RulesResult::currency_invalid;
  if (r.categories.empty() || r.categories.size() > rebate_categories_max) {
    return RulesResult::categories_invalid;
  }
  std::set<std::string> names;
  for (const CategoryRate& c : r.categories) {
    if (!valid_category(c.category) || !names.insert(c.category).second) {
      return RulesResult::categories_invalid;
    }
    if (c.rate_bps == 0 || c.rate_bps > rate_bps_max) return RulesResult::category_rate_invalid;
  }
  if (r.return_window_s > rebate_return_window_s_max) return RulesResult::return_window_too_long;
  if (r.campaigns.size() > rebate_campaigns_max) return RulesResult::campaigns_invalid;
  for (const Campaign& c : r.campaigns) {
    if (c.starts_at >= c.ends_at || c.multiplier_bps < bps_one ||
        c.multiplier_bps > multiplier_bps_max || c.categories.size() > rebate_categories_max) {
      return RulesResult::campaigns_invalid;
    }
    for (const std::string& name : c.categories) {
      if (names.count(name) == 0) return RulesResult::campaigns_invalid;
    }
  }
  return RulesResult::ok;
}

RulesResult check_rules_account(const EarningRules& rules, const AccountSpec* issuer,
                                const AccountSpec* expiry) {
  if (issuer == nullptr) return RulesResult::issuer_account_not_found;
  if (issuer->ledger != rules.ledger || issuer->kind != AccountKind::issuer) {
    return RulesResult::issuer_account_invalid;
  }
  if (rules.expiry_account == 0) return RulesResult::ok;
  if (expiry == nullptr) return RulesResult::expiry_account_not_found;
  if (expiry->ledger != rules.ledger || expiry->kind != AccountKind::issuer) {
    return RulesResult::expiry_account_invalid;
  }
  return RulesResult::ok;
}

std::string encode_rules(const EarningRules& r) {
  std::string out;
  put_u8(out, rules_version);
  put_varint(out, r.ledger);
  put_varint(out, r.issuer_account);
  put_varint(out, r.expiry_account);
  put_bytes(out, r.currency);
  put_varint(out, r.categories.size());
  for (const CategoryRate& c : r.categories) {
    put_bytes(out, c.category);
    put_varint(out, c.rate_bps);
  }
  put_varint(out, r.min_purchase);
  put_varint(out, r.cap_per_order);
  put_varint(out, r.cap_per_member_day);
  put_varint(out, r.return_window_s);
  put_varint(out, r.campaigns.size());
  for (const Campaign& c : r.campaigns) {
    put_varint(out, c.starts_at);
    put_varint(out, c.ends_at);
    put_varint(out, c.multiplier_bps);
    put_varint(out, c.categories.size());
    for (const std::string& name : c.categories) put_bytes(out, name);
  }
  put_varint(out, r.timestamp);
  return out;
}

DecodeError decode_rules(std::string_view data, EarningRules* out) {
  Reader in(data);
  if (!read_version(in, rules_version)) return in.finish();
  EarningRules r;
  r.ledger = in.varint();
  r.issuer_account = in.varint();
  r.expiry_account = in.varint();
  r.currency = in.bytes(currency_bytes);
  const auto n = in.bounded<std::size_t>(rebate_categories_max);
  for (std::size_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    CategoryRate c;
    c.category = in.bytes(rebate_category_bytes_max);
    c.rate_bps = in.bounded<std::uint32_t>(UINT32_MAX);
    r.categories.push_back(std::move(c));
  }
  r.min_purchase = in.varint();
  r.cap_per_order = in.varint();
  r.cap_per_member_day = in.varint();
  r.return_window_s = in.bounded<std::uint32_t>(UINT32_MAX);
  const auto m = in.bounded<std::size_t>(rebate_campaigns_max);
  for (std::size_t i = 0; i < m && in.error() == DecodeError::none; ++i) {
    Campaign c;
    c.starts_at = in.varint();
    c.ends_at = in.varint();
    c.multiplier_bps = in.bounded<std::uint32_t>(UINT32_MAX);
    const auto k = in.bounded<std::size_t>(rebate_categories_max);
    for (std::size_t j = 0; j < k && in.error() == DecodeError::none; ++j) {
      c.categories.push_back(in.bytes(rebate_category_bytes_max));
    }
    r.campaigns.push_back(std::move(c));
  }
  r.timestamp = in.varint();
  const DecodeError err = in.finish();
  if (err != DecodeError::none) return err;
  // Pair assertion: only valid rules are ever written.
  if (r.ledger == 0 || r.issuer_account == 0 || validate_rules(r) != RulesResult::ok) {
    return DecodeError::invalid_field;
  }
  *out = std::move(r);
  return DecodeError::none;
}

PurchaseResult validate_purchase(const Purchase& p) {
  if (p.id == 0) return PurchaseResult::id_must_not_be_zero;
  if (p.id > process_id_max) return PurchaseResult::id_reserved;
  if (p.amount == 0) return PurchaseResult::amount_must_not_be_zero;
  if (p.member_account == 0) return PurchaseResult::member_account_not_found;
  if (!valid_currency(p.currency)) return PurchaseResult::currency_mismatch;
  if (!valid_category(p.category)) return PurchaseResult::category_not_found;
  return PurchaseResult::ok;
}

Earning earn(const EarningRules& rules, const Purchase& p, std::uint64_t now_ns) {
  Earning e;
  if (p.currency != rules.currency) {
    e.result = PurchaseResult::currency_mismatch;
    return e;
  }
  const auto it = std::find_if(rules.categories.begin(), rules.categories.end(),
                               [&](const CategoryRate& c) { return c.category == p.category; });
  if (it == rules.categories.end()) {
    e.result = PurchaseResult::category_not_found;
    return e;
  }
  e.rate_bps = it->rate_bps;
  for (const Campaign& c : rules.campaigns) {
    if (covers(c, p.category, now_ns))
      e.multiplier_bps = std::max(e.multiplier_bps, c.multiplier_bps);
  }
  if (p.amount >= rules.min_purchase) {
    // amount < 2^64, rate <= 10^4, multiplier <= 10^6: the product fits in 128 bits.
    const u128 product = static_cast<u128>(p.amount) * e.rate_bps * e.multiplier_bps;
    e.points_earned = saturate(product / (static_cast<u128>(bps_one) * bps_one));
  }
  e.points =
      rules.cap_per_order != 0 ? std::min(e.points_earned, rules.cap_per_order) : e.points_earned;
  // Every posted amount stays below amount_sum_max (2^63 - 1).
  e.points = std::min<std::uint64_t>(e.points, amount_sum_max);
  return e;
}

std::uint64_t apply_daily_cap(std::uint64_t points, std::uint64_t cap, std::uint64_t earned_today) {
  if (cap == 0) return points;
  return earned_today >= cap ? 0 : std::min(points, cap - earned_today);
}

// ---------------------------------------------------------------------------------------------
// Steps.

std::string encode_step(const PurchaseStarted& s) {
  std::string out;
  put_u8(out, purchase_data_version);
  const Purchase& r = s.request;
  put_varint(out, r.id);
  put_varint(out, r.member_account);
  put_varint(out, r.amount);
  put_bytes(out, r.currency);
  put_bytes(out, r.category);
  for (std::uint64_t x :
       {s.ledger, s.issuer_account, std::uint64_t{s.rate_bps}, std::uint64_t{s.multiplier_bps},
        s.points_earned, s.points, s.window_ends_at, std::uint64_t{s.day}}) {
    put_varint(out, x);
  }
  return out;
}

std::string encode_step(const PurchaseRefunded& r) {
  std::string out;
  put_u8(out, purchase_data_version);
  for (std::uint64_t x : {r.id, r.amount, r.points_reduced, r.clawback_points}) put_varint(out, x);
  return out;
}

std::string encode_step(const PurchaseDecided& d) {
  std::string out;
  put_u8(out, purchase_data_version);
  put_u8(out, static_cast<std::uint8_t>(d.status));
  put_varint(out, d.points_posted);
  put_varint(out, static_cast<std::uint32_t>(d.credit_result));
  return out;
}

std::string encode_step(const PurchaseClawedBack& c) {
  std::string out;
  put_u8(out, purchase_data_version);
  for (std::uint64_t x : {c.refund_id, c.taken, c.shortfall}) put_varint(out, x);
  return out;
}

std::string encode_empty_purchase_step() {
  std::string out;
  put_u8(out, purchase_data_version);
  return out;
}

DecodeError decode_step(std::string_view data, PurchaseStarted* out) {
  Reader in(data);
  if (!read_version(in, purchase_data_version)) return in.finish();
  PurchaseStarted s;
  Purchase& r = s.request;
  r.id = in.varint();
  r.member_account = in.varint();
  r.amount = in.varint();
  r.currency = in.bytes(currency_bytes);
  r.category = in.bytes(rebate_category_bytes_max);
  s.ledger = in.varint();
  s.issuer_account = in.varint();
  s.rate_bps = in.bounded<std::uint32_t>(rate_bps_max);
  s.multiplier_bps = in.bounded<std::uint32_t>(multiplier_bps_max);
  s.points_earned = in.varint();
  s.points = in.varint();
  s.window_ends_at = in.varint();
  s.day = in.bounded<std::uint32_t>(UINT32_MAX);
  if (in.error() == DecodeError::none &&
      (validate_purchase(r) != PurchaseResult::ok || s.points > s.points_earned ||
       s.points > amount_sum_max || s.issuer_account == 0 || s.ledger == 0)) {
    in.fail(DecodeError::invalid_field);
  }
  *out = std::move(s);
  return in.finish();
}

DecodeError decode_step(std::string_view data, PurchaseRefunded* out) {
  Reader in(data);
  if (!read_version(in, purchase_data_version)) return in.finish();
  out->id = in.varint();
  out->amount = in.varint();
  out->points_reduced = in.varint();
  out->clawback_points = in.varint();
  if (in.error() == DecodeError::none &&
      (out->id == 0 || out->amount == 0 ||
       (out->points_reduced != 0 && out->clawback_points != 0))) {
    in.fail(DecodeError::invalid_field);
  }
  return in.finish();
}

DecodeError decode_step(std::string_view data, PurchaseDecided* out) {
  Reader in(data);
  if (!read_version(in, purchase_data_version)) return in.finish();
  PurchaseDecided d;
  const std::uint8_t status = in.u8();
  if (status < static_cast<std::uint8_t>(PurchaseStatus::available) ||
      status > static_cast<std::uint8_t>(PurchaseStatus::nothing_earned)) {
    in.fail(DecodeError::invalid_field);
  }
  d.status = static_cast<PurchaseStatus>(status);
  d.points_posted = in.varint();
  d.credit_result =
      static_cast<TransferResult>(in.bounded<std::uint32_t>(transfer_result_count - 1));
  if (in.error() == DecodeError::none &&
      ((d.status == PurchaseStatus::failed) != (d.credit_result != TransferResult::ok) ||
       (d.status != PurchaseStatus::available && d.points_posted != 0))) {
    in.fail(DecodeError::invalid_field);
  }
  *out = d;
  return in.finish();
}

DecodeError decode_step(std::string_view data, PurchaseClawedBack* out) {
  Reader in(data);
  if (!read_version(in, purchase_data_version)) return in.finish();
  out->refund_id = in.varint();
  out->taken = in.varint();
  out->shortfall = in.varint();
  return in.finish();
}

// ---------------------------------------------------------------------------------------------
// The fold.

DecodeError fold_purchase(const ProcessRecord& record, PurchaseState* state) {
  return fold_steps(record, ProcessKind::rebate, state, fold_step);
}

bool purchase_finished(const ProcessRecord& record) {
  // completed, and as many clawed_back steps as refunds that asked for one.
  bool completed = false;
  std::size_t asked = 0;
  std::size_t done = 0;
  for (const ProcessStepRecord& s : record.steps) {
    if (s.step == static_cast<std::uint8_t>(PurchaseStep::completed)) completed = true;
    if (s.step == static_cast<std::uint8_t>(PurchaseStep::clawed_back)) ++done;
    if (s.step == static_cast<std::uint8_t>(PurchaseStep::refunded)) {
      PurchaseRefunded r;
      if (decode_step(s.data, &r) == DecodeError::none && r.clawback_points != 0) ++asked;
    }
  }
  return completed && asked == done;
}

PurchaseInfo purchase_info(const PurchaseState& st) {
  PurchaseInfo i;
  const PurchaseStarted& s = st.started;
  i.request = s.request;
  i.ledger = s.ledger;
  i.issuer_account = s.issuer_account;
  i.rate_bps = s.rate_bps;
  i.multiplier_bps = s.multiplier_bps;
  i.points_earned = s.points_earned;
  i.points = s.points;
  i.points_due = st.points_due;
  i.window_ends_at = s.window_ends_at;
  i.status = st.decided ? st.decision.status : PurchaseStatus::pending;
  i.credit_result = st.decision.credit_result;
  i.points_posted = st.decision.points_posted;
  i.refunds = st.refunds;
  i.refunded_amount = st.refunded_amount;
  for (const RefundInfo& r : st.refunds) {
    i.clawed_back += r.clawed_back;
    i.shortfall += r.shortfall;
  }
  i.settled = st.completed && st.clawbacks_open == 0;
  i.created_at = st.created_at;
  i.updated_at = st.updated_at;
  i.position = st.last_position;
  return i;
}

CounterKey rebate_member_counter(std::uint32_t day, AccountId member) {
  return CounterKey{day, counter_scope_rebate_member, member, 0};
}

std::vector<CounterDelta> purchase_counter_deltas(const ProcessRecord& before,
                                                  const ProcessStepped& step) {
  PurchaseStarted started;
  if (step.step == static_cast<std::uint8_t>(PurchaseStep::started)) {
    if (decode_step(step.data, &started) != DecodeError::none || started.points == 0) return {};
    return {{rebate_member_counter(started.day, started.request.member_account), started.points,
             false}};
  }
  if (before.steps.empty() ||
      decode_step(before.steps.front().data, &started) != DecodeError::none) {
    return {};
  }
  const CounterKey key = rebate_member_counter(started.day, started.request.member_account);
  if (step.step == static_cast<std::uint8_t>(PurchaseStep::refunded)) {
    PurchaseRefunded r;
    if (decode_step(step.data, &r) != DecodeError::none || r.points_reduced == 0) return {};
    return {{key, r.points_reduced, true}};
  }
  if (step.step == static_cast<std::uint8_t>(PurchaseStep::decided)) {
    PurchaseDecided d;
    if (decode_step(step.data, &d) != DecodeError::none || d.status != PurchaseStatus::failed) {
      return {};
    }
    // What the refunds before it did not give back yet.
    PurchaseState st;
    if (fold_purchase(before, &st) != DecodeError::none || st.points_due == 0) return {};
    return {{key, st.points_due, true}};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Transfers and decisions.

Transfer purchase_credit(const PurchaseStarted& s) {
  Transfer t;
  t.id = s.request.id;
  t.debit_account = s.issuer_account;
  t.credit_account = s.request.member_account;
  t.amount = s.points;
  t.ledger = s.ledger;
  t.code = rebate_transfer_code;
  t.flags = transfer_flags::pending;
  return t;
}

Transfer purchase_resolution(const PurchaseStarted& s, bool post, std::uint64_t amount) {
  POINTEX_ASSERT(s.request.id <= process_id_max);
  Transfer t;
  t.id = workflow_transfer_id_min | s.request.id;
  t.debit_account = s.issuer_account;
  t.credit_account = s.request.member_account;
  t.ledger = s.ledger;
  t.code = rebate_transfer_code;
  t.pending_id = s.request.id;
  t.amount = post ? amount : 0;
  t.flags = post ? transfer_flags::post_pending : transfer_flags::void_pending;
  return t;
}

bool purchase_resolution_done(bool post, TransferResult result) {
  return order_resolution_done(post, result);
}

Transfer purchase_clawback(const PurchaseStarted& s, std::uint64_t points,
                           std::uint64_t refund_position) {
  POINTEX_ASSERT(refund_position < clawback_id_bit);
  Transfer t;
  t.id = workflow_transfer_id_min | clawback_id_bit | refund_position;
  t.debit_account = s.request.member_account;
  t.credit_account = s.issuer_account;
  t.amount = points;
  t.ledger = s.ledger;
  t.code = rebate_transfer_code;
  t.flags = transfer_flags::balancing_debit;
  return t;
}

std::optional<PurchaseDecided> decide_after_credit(TransferResult result) {
  if (result == TransferResult::ok || result == TransferResult::exists) return std::nullopt;
  PurchaseDecided d;
  d.status = PurchaseStatus::failed;
  d.credit_result = result;
  return d;
}

bool purchase_due(const PurchaseState& st, std::uint64_t now_ns) {
  return st.credited && !st.decided && now_ns >= st.started.window_ends_at;
}

PurchaseDecided decide_window_end(const PurchaseState& st) {
  PurchaseDecided d;
  d.status = st.points_due != 0 ? PurchaseStatus::available : PurchaseStatus::refunded;
  d.points_posted = st.points_due;
  return d;
}

RefundDecision decide_refund(const PurchaseState& st, const Refund& refund) {
  RefundDecision d;
  for (const RefundInfo& e : st.refunds) {
    if (e.id != refund.id) continue;
    d.result = e.amount == refund.amount ? PurchaseResult::exists
                                         : PurchaseResult::exists_with_different_fields;
    d.existing = e;
    return d;
  }
  if (refund.id == 0) {
    d.result = PurchaseResult::id_must_not_be_zero;
    return d;
  }
  if (refund.amount == 0) {
    d.result = PurchaseResult::amount_must_not_be_zero;
    return d;
  }
  if (refund.amount > st.started.request.amount - st.refunded_amount) {
    d.result = PurchaseResult::refund_exceeds_purchase;
    return d;
  }
  if (st.refunds.size() >= purchase_refunds_max) {
    d.result = PurchaseResult::too_many_refunds;
    return d;
  }
  const std::uint64_t amount = st.started.request.amount;
  const std::uint64_t before = due_after(st.started.points, amount, st.refunded_amount);
  const std::uint64_t after =
      due_after(st.started.points, amount, st.refunded_amount + refund.amount);
  d.step.id = refund.id;
  d.step.amount = refund.amount;
  if (!st.decided) {
    d.step.points_reduced = st.points_due - std::min(st.points_due, after);
    d.void_now = st.credited && st.points_due - d.step.points_reduced == 0;
  } else if (st.decision.status == PurchaseStatus::available) {
    d.step.clawback_points = before - after;
  }
  return d;
}

}  // namespace pointex::domain
