#include "domain/exchange.hpp"

#include "domain/assert.hpp"
#include "domain/varint.hpp"

namespace pointex::domain {
namespace {

__extension__ typedef unsigned __int128 u128;

/// Every step's data starts with its own layout version.
constexpr std::uint8_t step_data_version = 1;

/// Reads the data's version byte: unknown_version for a newer one.
bool read_version(Reader& in) {
  const std::uint8_t version = in.u8();
  if (in.error() != DecodeError::none) return false;
  if (version != step_data_version) {
    in.fail(DecodeError::unknown_version);
    return false;
  }
  return true;
}

ExchangeResult read_exchange_result(Reader& in) {
  return static_cast<ExchangeResult>(in.bounded<std::uint32_t>(exchange_result_count - 1));
}

}  // namespace

RateResult validate_rate(const Rate& r) {
  if (r.from_ledger == r.to_ledger) return RateResult::ledgers_must_be_different;
  if (r.numerator == 0) return RateResult::numerator_must_not_be_zero;
  if (r.denominator == 0) return RateResult::denominator_must_not_be_zero;
  if (r.fee_bps > fee_bps_max) return RateResult::fee_bps_too_high;
  return RateResult::ok;
}

RateResult check_rate_accounts(const Rate& r, const AccountSpec* from, const AccountSpec* to) {
  if (from == nullptr) return RateResult::from_exchange_account_not_found;
  if (to == nullptr) return RateResult::to_exchange_account_not_found;
  if (from->ledger != r.from_ledger) return RateResult::from_exchange_account_ledger_mismatch;
  if (to->ledger != r.to_ledger) return RateResult::to_exchange_account_ledger_mismatch;
  return RateResult::ok;
}

ExchangeResult validate_exchange(const Exchange& e) {
  if (e.id == 0) return ExchangeResult::id_must_not_be_zero;
  if (e.id > process_id_max) return ExchangeResult::id_reserved;
  if (e.amount == 0) return ExchangeResult::amount_must_not_be_zero;
  if (e.from_account == 0) return ExchangeResult::from_account_not_found;
  if (e.to_account == 0) return ExchangeResult::to_account_not_found;
  if (e.from_account == e.to_account) return ExchangeResult::accounts_must_be_different;
  return ExchangeResult::ok;
}

ExchangeQuote quote_exchange(const Rate& rate, std::uint64_t amount) {
  POINTEX_ASSERT(rate.denominator != 0);
  POINTEX_ASSERT(rate.fee_bps <= fee_bps_max);
  ExchangeQuote q;
  const u128 gross = static_cast<u128>(amount) * rate.numerator / rate.denominator;
  if (gross > UINT64_MAX) {
    q.result = ExchangeResult::overflow;
    return q;
  }
  // gross * fee_bps < 2^64 * 2^14: fits 128 bits. Rounded up: the fee is never under its rate.
  const u128 fee = (gross * rate.fee_bps + (fee_bps_max - 1)) / fee_bps_max;
  POINTEX_ASSERT(fee <= gross);
  q.gross = static_cast<std::uint64_t>(gross);
  q.fee = static_cast<std::uint64_t>(fee);
  q.credited = q.gross - q.fee;
  if (q.credited == 0) q.result = ExchangeResult::amount_too_small;
  return q;
}

CounterKey member_counter(std::uint32_t day, AccountId member) {
  return {day, counter_scope_exchange_member, member, 0};
}

CounterKey pair_counter(std::uint32_t day, LedgerId from_ledger, LedgerId to_ledger) {
  return {day, counter_scope_exchange_pair, from_ledger, to_ledger};
}

ExchangeResult check_caps(const Rate& rate, const CounterTable& counted, AccountId member,
                          std::uint32_t day, std::uint64_t amount) {
  const auto over = [&](std::uint64_t cap, const CounterKey& key) {
    return cap != 0 && static_cast<u128>(counter_value(counted, key)) + amount > cap;
  };
  if (over(rate.member_daily_cap, member_counter(day, member))) {
    return ExchangeResult::member_daily_cap_exceeded;
  }
  if (over(rate.pair_daily_cap, pair_counter(day, rate.from_ledger, rate.to_ledger))) {
    return ExchangeResult::pair_daily_cap_exceeded;
  }
  return ExchangeResult::ok;
}

std::string encode_step(const ExchangeStarted& s) {
  std::string out;
  put_u8(out, step_data_version);
  for (std::uint64_t x :
       {s.request.id, s.request.from_account, s.request.to_account, s.request.amount, s.from_ledger,
        s.to_ledger, s.from_exchange_account, s.to_exchange_account, s.gross, s.fee, s.credited,
        std::uint64_t{s.day}}) {
    put_varint(out, x);
  }
  return out;
}

std::string encode_step(const ExchangeDecided& d) {
  std::string out;
  put_u8(out, step_data_version);
  put_u8(out, d.commit ? 1 : 0);
  put_varint(out, static_cast<std::uint32_t>(d.result));
  put_varint(out, d.leg);
  put_varint(out, static_cast<std::uint32_t>(d.leg_result));
  put_u8(out, d.legs);
  return out;
}

std::string encode_step(const ExchangeCompleted& c) {
  std::string out;
  put_u8(out, step_data_version);
  put_varint(out, static_cast<std::uint32_t>(c.result));
  return out;
}

DecodeError decode_step(std::string_view data, ExchangeStarted* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  ExchangeStarted s;
  s.request.id = in.varint();
  s.request.from_account = in.varint();
  s.request.to_account = in.varint();
  s.request.amount = in.varint();
  s.from_ledger = in.varint();
  s.to_ledger = in.varint();
  s.from_exchange_account = in.varint();
  s.to_exchange_account = in.varint();
  s.gross = in.varint();
  s.fee = in.varint();
  s.credited = in.varint();
  s.day = in.bounded<std::uint32_t>(UINT32_MAX);
  if (s.fee > s.gross || s.credited != s.gross - s.fee) in.fail(DecodeError::invalid_field);
  *out = s;
  return in.finish();
}

DecodeError decode_step(std::string_view data, ExchangeDecided* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  ExchangeDecided d;
  d.commit = in.bounded<std::uint8_t>(1) == 1;
  d.result = read_exchange_result(in);
  d.leg = in.bounded<std::uint32_t>(2);
  d.leg_result = static_cast<TransferResult>(in.bounded<std::uint32_t>(transfer_result_count - 1));
  d.legs = in.bounded<std::uint8_t>(leg1_bit | leg2_bit);
  *out = d;
  return in.finish();
}

DecodeError decode_step(std::string_view data, ExchangeCompleted* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  ExchangeCompleted c;
  c.result = read_exchange_result(in);
  *out = c;
  return in.finish();
}

DecodeError fold_exchange(const ProcessRecord& record, ExchangeState* state) {
  *state = ExchangeState{};
  if (record.kind != ProcessKind::exchange || record.steps.empty()) {
    return DecodeError::invalid_field;
  }
  for (std::size_t i = 0; i < record.steps.size(); ++i) {
    const ProcessStepRecord& s = record.steps[i];
    // Steps come in order, each once: started, decided, completed.
    if (s.step != i) return DecodeError::invalid_field;
    DecodeError err = DecodeError::invalid_field;
    if (s.step == step_started) {
      err = decode_step(s.data, &state->started);
      state->started_at = s.timestamp;
    } else if (s.step == step_decided) {
      err = decode_step(s.data, &state->decided);
    } else if (s.step == step_completed) {
      err = decode_step(s.data, &state->completed);
    }
    if (err != DecodeError::none) return err;
    if (state->started.request.id != record.id) return DecodeError::invalid_field;
    state->step = static_cast<ExchangeStep>(s.step);
    state->updated_at = s.timestamp;
    state->last_position = s.position;
  }
  return DecodeError::none;
}

ExchangeInfo exchange_info(const ExchangeState& st) {
  const ExchangeStarted& s = st.started;
  ExchangeInfo i;
  i.request = s.request;
  i.from_ledger = s.from_ledger;
  i.to_ledger = s.to_ledger;
  i.from_exchange_account = s.from_exchange_account;
  i.to_exchange_account = s.to_exchange_account;
  i.debited = s.request.amount;
  i.gross = s.gross;
  i.fee = s.fee;
  i.credited = s.credited;
  i.day = s.day;
  i.step = st.step;
  if (st.step != ExchangeStep::started) {
    i.commit = st.decided.commit;
    i.result = st.decided.result;
    i.leg = st.decided.leg;
    i.leg_result = st.decided.leg_result;
  }
  i.started_at = st.started_at;
  i.updated_at = st.updated_at;
  i.position = st.last_position;
  return i;
}

std::array<Transfer, 2> exchange_legs(const ExchangeStarted& s) {
  Transfer leg1;
  leg1.id = s.request.id;
  leg1.debit_account = s.request.from_account;
  leg1.credit_account = s.from_exchange_account;
  leg1.amount = s.request.amount;
  leg1.ledger = s.from_ledger;
  leg1.code = exchange_transfer_code;
  leg1.flags = transfer_flags::pending;
  Transfer leg2 = leg1;
  leg2.debit_account = s.to_exchange_account;
  leg2.credit_account = s.request.to_account;
  leg2.amount = s.credited;
  leg2.ledger = s.to_ledger;
  return {leg1, leg2};
}

Transfer leg_resolution(const ExchangeStarted& s, std::size_t index, bool post) {
  POINTEX_ASSERT(index < 2);
  POINTEX_ASSERT(s.request.id < workflow_transfer_id_min);
  const Transfer leg = exchange_legs(s)[index];
  Transfer t;
  t.id = workflow_transfer_id_min | s.request.id;
  t.debit_account = leg.debit_account;
  t.credit_account = leg.credit_account;
  t.ledger = leg.ledger;
  t.code = exchange_transfer_code;
  t.pending_id = leg.id;
  t.flags = post ? transfer_flags::post_pending : transfer_flags::void_pending;
  return t;
}

ExchangeDecided decide_after_legs(TransferResult leg1, TransferResult leg2) {
  ExchangeDecided d;
  const bool ok1 = leg1 == TransferResult::ok;
  const bool ok2 = leg2 == TransferResult::ok;
  if (ok1 && ok2) {
    d.commit = true;
    d.legs = leg1_bit | leg2_bit;
    return d;
  }
  d.result = ExchangeResult::leg_failed;
  d.leg = ok1 ? 2 : 1;
  d.leg_result = ok1 ? leg2 : leg1;
  d.legs = static_cast<std::uint8_t>((ok1 ? leg1_bit : 0) | (ok2 ? leg2_bit : 0));
  return d;
}

ExchangeDecided decide_after_crash(const ExchangeStarted& started,
                                   const std::optional<TransferInfo>& leg1,
                                   const std::optional<TransferInfo>& leg2) {
  const std::array<Transfer, 2> legs = exchange_legs(started);
  const std::array<const std::optional<TransferInfo>*, 2> found = {&leg1, &leg2};
  ExchangeDecided d;
  std::uint8_t own_pending = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    const std::optional<TransferInfo>& t = *found[i];
    const std::uint8_t bit = i == 0 ? leg1_bit : leg2_bit;
    if (!t) {
      if (d.leg == 0) d.result = ExchangeResult::interrupted;
      continue;
    }
    if (t->request != legs[i]) {
      // A client's transfer holds the id: what the leg would have answered.
      if (d.leg == 0) {
        d.result = ExchangeResult::leg_failed;
        d.leg = static_cast<std::uint32_t>(i + 1);
        d.leg_result = TransferResult::exists_with_different_fields;
      }
      continue;
    }
    // Its own leg can only be pending here: posts and voids come after `decided`.
    POINTEX_ASSERT(t->state == TransferState::pending);
    own_pending |= bit;
  }
  if (own_pending == (leg1_bit | leg2_bit)) {
    d = ExchangeDecided{};
    d.commit = true;
  } else if (d.result == ExchangeResult::ok) {
    d.result = ExchangeResult::interrupted;
  }
  d.legs = own_pending;
  return d;
}

bool resolution_done(bool commit, TransferResult result) {
  return result == TransferResult::ok || result == TransferResult::exists ||
         result == (commit ? TransferResult::pending_transfer_already_posted
                           : TransferResult::pending_transfer_already_voided);
}

ExchangeOutcome exchange_outcome(const ExchangeState& st, bool first) {
  ExchangeOutcome o;
  o.debited = st.started.request.amount;
  o.credited = st.started.credited;
  o.fee = st.started.fee;
  if (st.step == ExchangeStep::started) return o;  // not decided: the caller waits
  o.result = st.decided.result;
  o.leg = st.decided.leg;
  o.leg_result = st.decided.leg_result;
  if (o.result == ExchangeResult::ok && !first) o.result = ExchangeResult::exists;
  return o;
}

}  // namespace pointex::domain
