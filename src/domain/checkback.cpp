#include "domain/checkback.hpp"

#include <algorithm>

#include "domain/assert.hpp"
#include "domain/decide.hpp"
#include "domain/varint.hpp"
#include "domain/webhook.hpp"

namespace pointex::domain {
namespace {

constexpr std::uint8_t check_data_version = 1;
constexpr std::uint64_t ns_per_ms = 1'000'000ULL;
constexpr std::size_t check_detail_bytes_max = 256;

bool read_version(Reader& in) {
  const std::uint8_t version = in.u8();
  if (in.error() != DecodeError::none) return false;
  if (version != check_data_version) {
    in.fail(DecodeError::unknown_version);
    return false;
  }
  return true;
}

bool outcome_posts(CheckOutcome o) {
  return o == CheckOutcome::commit || o == CheckOutcome::client_committed;
}

DecodeError fold_step(const ProcessStepRecord& s, bool first, CheckState* st) {
  if (s.step > static_cast<std::uint8_t>(CheckStep::resolved)) return DecodeError::invalid_field;
  const auto step = static_cast<CheckStep>(s.step);
  if (first != (step == CheckStep::started)) return DecodeError::invalid_field;
  DecodeError err = DecodeError::none;
  switch (step) {
    case CheckStep::started:
      err = decode_step(s.data, &st->started);
      st->next_check_at = st->started.first_check_at;
      st->created_at = s.timestamp;
      return err;
    case CheckStep::made: {
      if (st->made || st->decided) return DecodeError::invalid_field;
      Reader in(s.data);
      read_version(in);
      st->made = true;
      return in.finish();
    }
    case CheckStep::checked: {
      CheckChecked c;
      err = decode_step(s.data, &c);
      if (err != DecodeError::none) return err;
      if (!st->made || st->decided || c.check.attempt != st->checks.size() + 1 ||
          c.check.attempt > st->started.request.checks_max) {
        return DecodeError::invalid_field;
      }
      c.check.timestamp = s.timestamp;
      st->checks.push_back(c.check);
      st->next_check_at = c.next_check_at;
      return DecodeError::none;
    }
    case CheckStep::decided:
      if (st->decided) return DecodeError::invalid_field;
      err = decode_step(s.data, &st->decision);
      if (err != DecodeError::none) return err;
      // Only a refused transfer fails, and then nothing was made.
      if ((st->decision.outcome == CheckOutcome::fail) == st->made) {
        return DecodeError::invalid_field;
      }
      st->decided = true;
      st->next_check_at = 0;
      return DecodeError::none;
    case CheckStep::completed:
      if (!st->decided || st->completed) return DecodeError::invalid_field;
      err = decode_step(s.data, &st->final);
      st->completed = true;
      return err;
    case CheckStep::resolved: {
      CheckResolved r;
      err = decode_step(s.data, &r);
      if (err != DecodeError::none) return err;
      if (!st->completed || st->resolved || check_back_status(*st) != CheckBackStatus::parked) {
        return DecodeError::invalid_field;
      }
      st->resolved = true;
      st->note = std::move(r.note);
      return DecodeError::none;
    }
  }
  return DecodeError::invalid_field;
}

}  // namespace

CheckBackResult validate_checked_transfer(const CheckedTransfer& r, TransferResult* why) {
  *why = validate_transfer(r.transfer);
  if (*why != TransferResult::ok) return CheckBackResult::transfer_invalid;
  *why = check_client_transfer(r.transfer);
  if (*why != TransferResult::ok) return CheckBackResult::transfer_invalid;
  if (r.transfer.flags != transfer_flags::pending || r.transfer.timeout_s != 0) {
    return CheckBackResult::transfer_invalid;
  }
  if (r.transfer.id > process_id_max) return CheckBackResult::id_reserved;
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  if (r.url.size() > check_back_url_bytes_max || !parse_http_url(r.url, &host, &port, &target)) {
    return CheckBackResult::url_invalid;
  }
  if (r.check_after_s == 0 || r.check_after_s > check_back_after_s_max) {
    return CheckBackResult::check_after_invalid;
  }
  if (r.checks_max > check_back_checks_max) return CheckBackResult::checks_max_invalid;
  return CheckBackResult::ok;
}

// ---------------------------------------------------------------------------------------------
// Steps.

std::string encode_step(const CheckStarted& s) {
  std::string out;
  put_u8(out, check_data_version);
  put_transfer_request(out, s.request.transfer);
  put_bytes(out, s.request.url);
  put_varint(out, s.request.check_after_s);
  put_varint(out, s.request.checks_max);
  put_varint(out, s.first_check_at);
  return out;
}

std::string encode_step(const CheckChecked& c) {
  std::string out;
  put_u8(out, check_data_version);
  put_varint(out, c.check.attempt);
  put_u8(out, static_cast<std::uint8_t>(c.check.answer));
  put_bytes(out, c.check.detail);
  put_varint(out, c.next_check_at);
  return out;
}

std::string encode_step(const CheckDecided& d) {
  std::string out;
  put_u8(out, check_data_version);
  put_u8(out, static_cast<std::uint8_t>(d.outcome));
  put_varint(out, static_cast<std::uint32_t>(d.transfer_result));
  return out;
}

std::string encode_step(const CheckCompleted& c) {
  std::string out;
  put_u8(out, check_data_version);
  put_u8(out, c.posted ? 1 : 0);
  return out;
}

std::string encode_step(const CheckResolved& r) {
  std::string out;
  put_u8(out, check_data_version);
  put_bytes(out, r.note);
  return out;
}

std::string encode_empty_check_step() {
  std::string out;
  put_u8(out, check_data_version);
  return out;
}

DecodeError decode_step(std::string_view data, CheckStarted* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  CheckStarted s;
  s.request.transfer = read_transfer_request(in);
  s.request.url = in.bytes(check_back_url_bytes_max);
  s.request.check_after_s = in.bounded<std::uint32_t>(check_back_after_s_max);
  s.request.checks_max = in.bounded<std::uint32_t>(check_back_checks_max);
  s.first_check_at = in.varint();
  TransferResult why = TransferResult::ok;
  if (in.error() == DecodeError::none &&
      (s.request.checks_max == 0 ||
       validate_checked_transfer(s.request, &why) != CheckBackResult::ok)) {
    in.fail(DecodeError::invalid_field);
  }
  *out = std::move(s);
  return in.finish();
}

DecodeError decode_step(std::string_view data, CheckChecked* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  out->check.attempt = in.bounded<std::uint32_t>(check_back_checks_max);
  const std::uint8_t answer = in.u8();
  if (answer > static_cast<std::uint8_t>(CheckAnswer::unknown)) in.fail(DecodeError::invalid_field);
  out->check.answer = static_cast<CheckAnswer>(answer);
  out->check.detail = in.bytes(check_detail_bytes_max);
  out->next_check_at = in.varint();
  if (in.error() == DecodeError::none &&
      (out->check.attempt == 0 ||
       (out->next_check_at != 0 && out->check.answer != CheckAnswer::unknown))) {
    in.fail(DecodeError::invalid_field);
  }
  return in.finish();
}

DecodeError decode_step(std::string_view data, CheckDecided* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  const std::uint8_t outcome = in.u8();
  if (outcome > static_cast<std::uint8_t>(CheckOutcome::client_rolled_back)) {
    in.fail(DecodeError::invalid_field);
  }
  out->outcome = static_cast<CheckOutcome>(outcome);
  out->transfer_result =
      static_cast<TransferResult>(in.bounded<std::uint32_t>(transfer_result_count - 1));
  if (in.error() == DecodeError::none &&
      (out->outcome == CheckOutcome::fail) == (out->transfer_result == TransferResult::ok)) {
    in.fail(DecodeError::invalid_field);
  }
  return in.finish();
}

DecodeError decode_step(std::string_view data, CheckCompleted* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  const std::uint8_t posted = in.u8();
  if (posted > 1) in.fail(DecodeError::invalid_field);
  out->posted = posted == 1;
  return in.finish();
}

DecodeError decode_step(std::string_view data, CheckResolved* out) {
  Reader in(data);
  if (!read_version(in)) return in.finish();
  out->note = in.bytes(check_back_note_bytes_max);
  return in.finish();
}

// ---------------------------------------------------------------------------------------------
// The fold.

DecodeError fold_check_back(const ProcessRecord& record, CheckState* state) {
  *state = CheckState{};
  if (record.kind != ProcessKind::check_back || record.steps.empty()) {
    return DecodeError::invalid_field;
  }
  for (std::size_t i = 0; i < record.steps.size(); ++i) {
    const ProcessStepRecord& s = record.steps[i];
    const DecodeError err = fold_step(s, i == 0, state);
    if (err != DecodeError::none) return err;
    state->updated_at = s.timestamp;
    state->last_position = s.position;
  }
  // The case's id is its transfer's.
  return state->started.request.transfer.id == record.id ? DecodeError::none
                                                         : DecodeError::invalid_field;
}

CheckBackStatus check_back_status(const CheckState& st) {
  // Until the post or void is done the transfer is still pending.
  if (!st.completed) return CheckBackStatus::pending;
  switch (st.decision.outcome) {
    case CheckOutcome::fail:
      return CheckBackStatus::failed;
    case CheckOutcome::park:
      // Parked unless its client posted it at the same time (the void found it posted).
      if (st.final.posted) return CheckBackStatus::committed;
      return st.resolved ? CheckBackStatus::resolved : CheckBackStatus::parked;
    default:
      return st.final.posted ? CheckBackStatus::committed : CheckBackStatus::rolled_back;
  }
}

bool check_back_finished(const ProcessRecord& record) {
  CheckState st;
  if (fold_check_back(record, &st) != DecodeError::none) return false;
  return st.completed && check_back_status(st) != CheckBackStatus::parked;
}

CheckBackInfo check_back_info(const CheckState& st) {
  CheckBackInfo i;
  i.request = st.started.request;
  i.status = check_back_status(st);
  i.transfer_result = st.decision.transfer_result;
  i.next_check_at = st.decided ? 0 : st.next_check_at;
  i.checks = st.checks;
  if (st.decided &&
      (i.status == CheckBackStatus::committed || i.status == CheckBackStatus::rolled_back)) {
    const bool client_decided = st.decision.outcome == CheckOutcome::client_committed ||
                                st.decision.outcome == CheckOutcome::client_rolled_back;
    // A check decided one way and the post or void found the other: its client was first.
    const bool client_won = st.completed && st.final.posted != outcome_posts(st.decision.outcome);
    i.by_client = client_decided || client_won;
  }
  i.note = st.note;
  i.settled = i.status != CheckBackStatus::pending && i.status != CheckBackStatus::parked;
  i.created_at = st.created_at;
  i.updated_at = st.updated_at;
  i.position = st.last_position;
  return i;
}

// ---------------------------------------------------------------------------------------------
// Transfers and decisions.

Transfer check_back_pending(const CheckStarted& s) {
  return s.request.transfer;
}

Transfer check_back_resolution(const CheckStarted& s, bool post) {
  POINTEX_ASSERT(s.request.transfer.id <= process_id_max);
  Transfer t;
  t.id = workflow_transfer_id_min | s.request.transfer.id;
  t.debit_account = s.request.transfer.debit_account;
  t.pending_id = s.request.transfer.id;
  t.flags = post ? transfer_flags::post_pending : transfer_flags::void_pending;
  return t;
}

bool check_back_resolution_final(bool post, TransferResult result, bool* posted) {
  switch (result) {
    case TransferResult::ok:
    case TransferResult::exists:
      *posted = post;
      return true;
    case TransferResult::pending_transfer_already_posted:
      *posted = true;
      return true;
    case TransferResult::pending_transfer_already_voided:
    case TransferResult::pending_transfer_expired:
      *posted = false;
      return true;
    default:
      return false;
  }
}

std::optional<CheckDecided> decide_after_pending(TransferResult result) {
  if (result == TransferResult::ok || result == TransferResult::exists) return std::nullopt;
  return CheckDecided{CheckOutcome::fail, result};
}

bool check_due(const CheckState& st, std::uint64_t now_ns) {
  return st.made && !st.decided && st.next_check_at != 0 && now_ns >= st.next_check_at;
}

std::optional<CheckDecided> decide_from_client(TransferState state) {
  switch (state) {
    case TransferState::posted:
      return CheckDecided{CheckOutcome::client_committed, TransferResult::ok};
    case TransferState::voided:
    case TransferState::expired:
      return CheckDecided{CheckOutcome::client_rolled_back, TransferResult::ok};
    case TransferState::pending:
      break;
  }
  return std::nullopt;
}

CheckAnswered decide_check(const CheckState& st, CheckAnswer answer, std::string detail,
                           std::uint64_t now_ns, std::uint32_t backoff_base_ms,
                           std::uint32_t backoff_max_ms) {
  CheckAnswered a;
  a.step.check.attempt = static_cast<std::uint32_t>(st.checks.size() + 1);
  a.step.check.answer = answer;
  if (detail.size() > check_detail_bytes_max) detail.resize(check_detail_bytes_max);
  a.step.check.detail = std::move(detail);
  if (answer == CheckAnswer::commit) {
    a.decided = CheckDecided{CheckOutcome::commit, TransferResult::ok};
  } else if (answer == CheckAnswer::rollback) {
    a.decided = CheckDecided{CheckOutcome::rollback, TransferResult::ok};
  } else if (a.step.check.attempt >= st.started.request.checks_max) {
    a.decided = CheckDecided{CheckOutcome::park, TransferResult::ok};
  } else {
    // backoff_base * 2^(attempt - 1), at most backoff_max.
    std::uint64_t wait_ms = backoff_base_ms;
    for (std::uint32_t i = 1; i < a.step.check.attempt && wait_ms < backoff_max_ms; ++i) {
      wait_ms *= 2;
    }
    wait_ms = std::min<std::uint64_t>(std::max<std::uint64_t>(wait_ms, 1), backoff_max_ms);
    a.step.next_check_at = now_ns + wait_ms * ns_per_ms;
  }
  return a;
}

std::optional<CheckDecided> decided_by_last_check(const CheckState& st) {
  if (st.decided || st.checks.empty() || st.next_check_at != 0) return std::nullopt;
  switch (st.checks.back().answer) {
    case CheckAnswer::commit:
      return CheckDecided{CheckOutcome::commit, TransferResult::ok};
    case CheckAnswer::rollback:
      return CheckDecided{CheckOutcome::rollback, TransferResult::ok};
    case CheckAnswer::unknown:
      break;
  }
  return CheckDecided{CheckOutcome::park, TransferResult::ok};
}

CheckBackResult decide_resolve(const CheckState& st, std::string_view note) {
  if (note.size() > check_back_note_bytes_max) return CheckBackResult::note_too_long;
  if (check_back_status(st) != CheckBackStatus::parked) return CheckBackResult::not_parked;
  return CheckBackResult::ok;
}

}  // namespace pointex::domain
