#include "domain/webhook.hpp"

#include <algorithm>
#include <array>

#include "domain/varint.hpp"

namespace pointex::domain {
namespace {

constexpr std::uint8_t record_version = 1;

void apply_progress(WebhookRecord& record, const WebhookProgress& p) {
  record.webhook.cursor = std::max(record.webhook.cursor, p.cursor);
  for (const DeadLetter& d : p.dead_lettered) record.dead_letters[d.position] = d;
  for (std::uint64_t position : p.redelivered) record.dead_letters.erase(position);
  record.webhook.dead_letters = record.dead_letters.size();
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.';
}

bool target_char(char c) {
  return c > 0x20 && c < 0x7F && c != '#';
}

}  // namespace

void put_dead_letter(std::string& out, const DeadLetter& d) {
  for (std::uint64_t x :
       {d.position, std::uint64_t{d.attempts}, std::uint64_t{d.last_status}, d.timestamp}) {
    put_varint(out, x);
  }
}

DeadLetter read_dead_letter(Reader& in) {
  DeadLetter d;
  d.position = in.varint();
  d.attempts = in.bounded<std::uint32_t>(UINT32_MAX);
  d.last_status = in.bounded<std::uint32_t>(UINT32_MAX);
  d.timestamp = in.varint();
  return d;
}

void put_webhook_spec(std::string& out, const WebhookSpec& spec) {
  put_bytes(out, spec.url);
  put_bytes(out, spec.secret);
  put_varint(out, spec.events);
  put_varint(out, spec.ledgers.size());
  for (LedgerId l : spec.ledgers) put_varint(out, l);
}

WebhookSpec read_webhook_spec(Reader& in) {
  WebhookSpec spec;
  spec.url = in.bytes(webhook_url_bytes_max);
  spec.secret = in.bytes(webhook_secret_bytes_max);
  spec.events = in.bounded<std::uint32_t>(webhook_events::all);
  const auto n = in.bounded<std::size_t>(webhook_ledgers_max);
  for (std::size_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    spec.ledgers.push_back(in.varint());
  }
  return spec;
}

bool WebhookRecord::operator==(const WebhookRecord& o) const {
  const Webhook& a = webhook;
  const Webhook& b = o.webhook;
  return a.id == b.id && a.spec == b.spec && a.timestamp == b.timestamp && a.cursor == b.cursor &&
         a.dead_letters == b.dead_letters && dead_letters == o.dead_letters;
}

void apply_webhook_event(WebhookTable& table, std::uint64_t position, const Event& event) {
  if (const auto* c = std::get_if<WebhookCreated>(&event)) {
    WebhookRecord& r = table[position];
    r.webhook.id = position;
    r.webhook.spec = c->spec;
    r.webhook.timestamp = c->timestamp;
    r.webhook.cursor = position;
  } else if (const auto* d = std::get_if<WebhookDeleted>(&event)) {
    table.erase(d->id);
  } else if (const auto* p = std::get_if<WebhookProgressed>(&event)) {
    const auto it = table.find(p->progress.id);
    if (it != table.end()) apply_progress(it->second, p->progress);
  }
}

WebhookResult check_progress(const WebhookRecord& record, const WebhookProgress& progress,
                             std::size_t dead_letters_max) {
  if (progress.cursor < record.webhook.cursor) return WebhookResult::invalid_cursor;
  if (progress.dead_lettered.size() > webhook_progress_entries_max ||
      progress.redelivered.size() > webhook_progress_entries_max) {
    return WebhookResult::invalid;
  }
  for (const DeadLetter& d : progress.dead_lettered) {
    // A new dead letter lies in the stretch this progress covers; a redelivery that failed
    // again updates an existing one.
    const bool in_stretch = d.position > record.webhook.cursor && d.position <= progress.cursor;
    if (!in_stretch && record.dead_letters.count(d.position) == 0) return WebhookResult::invalid;
  }
  std::size_t after = record.dead_letters.size();
  for (const DeadLetter& d : progress.dead_lettered) {
    if (record.dead_letters.count(d.position) == 0) ++after;
  }
  for (std::uint64_t position : progress.redelivered) {
    if (record.dead_letters.count(position) == 0) return WebhookResult::not_found;
    --after;
  }
  if (after > dead_letters_max) return WebhookResult::too_many_dead_letters;
  return WebhookResult::ok;
}

bool valid_spec(const WebhookSpec& spec) {
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  return parse_http_url(spec.url, &host, &port, &target) && !spec.secret.empty() &&
         spec.secret.size() <= webhook_secret_bytes_max && spec.events != 0 &&
         (spec.events & ~webhook_events::all) == 0 && spec.ledgers.size() <= webhook_ledgers_max &&
         std::adjacent_find(spec.ledgers.begin(), spec.ledgers.end(),
                            [](LedgerId a, LedgerId b) { return a >= b; }) == spec.ledgers.end();
}

std::string encode_webhook_record(const WebhookRecord& record) {
  std::string out;
  const Webhook& w = record.webhook;
  put_u8(out, record_version);
  put_varint(out, w.id);
  put_varint(out, w.timestamp);
  put_varint(out, w.cursor);
  put_webhook_spec(out, w.spec);
  put_varint(out, record.dead_letters.size());
  for (const auto& [position, d] : record.dead_letters) put_dead_letter(out, d);
  return out;
}

DecodeError decode_webhook_record(std::string_view bytes, WebhookRecord* record) {
  Reader in(bytes);
  if (in.u8() != record_version) in.fail(DecodeError::unknown_version);
  WebhookRecord r;
  Webhook& w = r.webhook;
  w.id = in.varint();
  w.timestamp = in.varint();
  w.cursor = in.varint();
  w.spec = read_webhook_spec(in);
  const std::uint64_t n = in.varint();
  for (std::uint64_t i = 0; i < n && in.error() == DecodeError::none; ++i) {
    const DeadLetter d = read_dead_letter(in);
    r.dead_letters[d.position] = d;
  }
  w.dead_letters = r.dead_letters.size();
  const DecodeError err = in.finish();
  if (err == DecodeError::none) *record = std::move(r);
  return err;
}

bool parse_http_url(std::string_view url, std::string* host, std::uint16_t* port,
                    std::string* target) {
  constexpr std::string_view scheme = "http://";
  if (url.size() > webhook_url_bytes_max || url.substr(0, scheme.size()) != scheme) return false;
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (!std::all_of(path.begin(), path.end(), target_char)) return false;
  std::string_view h;
  std::string_view p;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    h = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return false;
    if (!after.empty()) p = after.substr(1);
    if (!std::all_of(h.begin(), h.end(), [](char c) {
          return c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                 (c >= 'A' && c <= 'F');
        })) {
      return false;
    }
    if (!after.empty() && p.empty()) return false;
  } else {
    const std::size_t colon = authority.find(':');
    h = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      p = authority.substr(colon + 1);
      if (p.empty()) return false;
    }
    if (h.empty() || !std::all_of(h.begin(), h.end(), host_char)) return false;
  }
  std::uint32_t port_value = 80;
  if (!p.empty()) {
    if (p.size() > 5 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    port_value = static_cast<std::uint32_t>(std::stoul(std::string(p)));
    if (port_value == 0 || port_value > 65535) return false;
  }
  *host = std::string(h);
  *port = static_cast<std::uint16_t>(port_value);
  *target = std::string(path);
  return true;
}

std::uint64_t backoff_ms(const RetryPolicy& policy, std::uint32_t failed_attempts) {
  std::uint64_t wait = policy.backoff_base_ms;
  for (std::uint32_t i = 1; i < failed_attempts && wait < policy.backoff_max_ms; ++i) {
    wait = wait > policy.backoff_max_ms / 2 ? policy.backoff_max_ms : wait * 2;
  }
  return std::min(wait, policy.backoff_max_ms);
}

DeliveryDecision decide_delivery(const RetryPolicy& policy, std::uint32_t attempts, int status) {
  if (delivered_status(status)) return {DeliveryStep::delivered, 0};
  if (attempts >= policy.attempts_max) return {DeliveryStep::dead_letter, 0};
  return {DeliveryStep::retry, backoff_ms(policy, attempts)};
}

}  // namespace pointex::domain

namespace pointex {

std::string_view to_string(WebhookResult result) {
  static constexpr std::array<std::string_view, 6> names = {
      "ok", "not_found", "too_many_webhooks", "invalid", "invalid_cursor", "too_many_dead_letters"};
  const auto i = static_cast<std::size_t>(result);
  return i < names.size() ? names[i] : "unknown";
}

}  // namespace pointex
