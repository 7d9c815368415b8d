#include "server/api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "server/hmac.hpp"
#include "server/json_map.hpp"

namespace pointex::server {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

/// Compares without an early exit, so the time taken does not say how much of a key matched.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0U : 1U;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

Response error(int status, std::string code, std::string message, std::string field = {}) {
  Response r;
  r.status = status;
  r.body = error_body({status, std::move(code), std::move(message), std::move(field)});
  return r;
}

Response error(const ApiError& e) {
  Response r;
  r.status = e.status;
  r.body = error_body(e);
  return r;
}

Response ok_json(int status, const json& j) {
  Response r;
  r.status = status;
  r.body = j.dump();
  return r;
}

Response status_error(const Status& s) {
  switch (s.code()) {
    case Status::Code::overloaded:
      return error(429, "overloaded",
                   "the engine is overloaded, nothing was applied: " + s.message());
    case Status::Code::invalid_argument:
      return error(400, "invalid_argument", s.message());
    case Status::Code::shutting_down:
      return error(503, "shutting_down", "the engine is closing");
    case Status::Code::timed_out:
      return error(503, "not_caught_up",
                   "the read models did not reach min_position in time; retry");
    case Status::Code::io_error:
    case Status::Code::corruption:
      return error(500, "engine_failed", "the engine stopped: " + s.to_string());
    default:
      return error(500, "internal", s.to_string());
  }
}

bool allowed(const ApiKey* key, LedgerId ledger) {
  return key->role == Role::admin ||
         std::binary_search(key->ledgers.begin(), key->ledgers.end(), ledger);
}

/// Issuer keys: whether a feed event belongs to one of the key's ledgers.
bool event_allowed(const ApiKey* key, const FeedEvent& ev) {
  if (key->role == Role::admin) return true;
  switch (ev.type) {
    case FeedEvent::Type::ledger_created:
      return allowed(key, ev.ledger.id);
    case FeedEvent::Type::account_created:
    case FeedEvent::Type::account_closed:  // the event carries the account's definition
      return allowed(key, ev.account.ledger);
    case FeedEvent::Type::transfer:
      return allowed(key, ev.transfer.ledger);
  }
  return false;
}

/// Events an issuer's `GET /v1/events` looks at (of every ledger) for one page at most.
constexpr std::uint64_t events_scanned_max = 100'000;

Response forbidden_ledger(LedgerId ledger) {
  return error(403, "forbidden",
               "this key may not touch ledger " + std::to_string(ledger) + "; nothing was applied");
}

/// What routing found: the endpoint, the id in the path and the query.
struct Route {
  Endpoint endpoint = Endpoint::unrouted;
  std::uint64_t id = 0;
  /// A second id in the path (/v1/rates/{from}/{to}, a dead letter's position).
  std::uint64_t id2 = 0;
  /// A name in the path (/v1/payments/{provider}/callback): a view into the target.
  std::string_view name;
  std::string_view query;
  /// Non-empty when the path exists but not with this method.
  std::string allow;
};

bool method_fits(std::string_view method, std::initializer_list<std::string_view> methods) {
  return std::find(methods.begin(), methods.end(), method) != methods.end();
}

/// /v1/subscriptions... (docs/webhooks.md).
template <class Set>
void route_subscriptions(std::string_view method, const std::array<std::string_view, 7>& seg,
                         std::size_t n, bool has_id, const Set& set, Route* r) {
  if (n == 2) {
    set(method == "POST" ? Endpoint::subscriptions_create : Endpoint::subscriptions_list,
        {"GET", "POST"}, "GET, POST");
  } else if (n == 3 && has_id) {
    set(method == "DELETE" ? Endpoint::subscription_delete : Endpoint::subscription_get,
        {"GET", "DELETE"}, "GET, DELETE");
  } else if (n == 4 && has_id && seg[3] == "dead_letters") {
    set(Endpoint::dead_letters_list, {"GET"}, "GET");
  } else if (n == 6 && has_id && seg[3] == "dead_letters" && parse_id(seg[4], &r->id2) &&
             seg[5] == "retry") {
    set(Endpoint::dead_letter_retry, {"POST"}, "POST");
  }
}

Route route(std::string_view method, std::string_view target) {
  Route r;
  const auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (q != std::string_view::npos) r.query = target.substr(q + 1);
  // No path the API serves has more than 6 segments: a 7th means no route.
  std::array<std::string_view, 7> seg;
  std::size_t n = 0;
  if (path.empty() || path.front() != '/') return r;
  path.remove_prefix(1);
  while (n < seg.size()) {
    const auto slash = path.find('/');
    seg[n++] = path.substr(0, slash);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  if (n == seg.size()) return r;
  auto set = [&](Endpoint e, std::initializer_list<std::string_view> methods, const char* allow) {
    if (method_fits(method, methods)) {
      r.endpoint = e;
    } else {
      r.allow = allow;
    }
  };
  if (n == 1 && seg[0] == "healthz") {
    set(Endpoint::healthz, {"GET"}, "GET");
    return r;
  }
  if (n == 1 && seg[0] == "metrics") {
    set(Endpoint::metrics, {"GET"}, "GET");
    return r;
  }
  if (n < 2 || seg[0] != "v1") return r;
  const std::string_view what = seg[1];
  const bool has_id = n >= 3 && parse_id(seg[2], &r.id);
  if (what == "ledgers") {
    if (n == 2) {
      set(method == "POST" ? Endpoint::ledgers_create : Endpoint::ledgers_list, {"GET", "POST"},
          "GET, POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::ledger_get, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "rules") {
      set(method == "PUT" ? Endpoint::rules_put : Endpoint::rules_get, {"GET", "PUT"}, "GET, PUT");
    }
  } else if (what == "accounts") {
    if (n == 2) {
      set(Endpoint::accounts_create, {"POST"}, "POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::account_get, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "close") {
      set(Endpoint::account_close, {"POST"}, "POST");
    } else if (n == 4 && has_id && seg[3] == "transfers") {
      set(Endpoint::account_transfers, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "balances") {
      set(Endpoint::account_balances, {"GET"}, "GET");
    }
  } else if (what == "transfers") {
    if (n == 2) {
      set(Endpoint::transfers_create, {"POST"}, "POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::transfer_get, {"GET"}, "GET");
    }
  } else if (what == "rates") {
    if (n == 2) {
      set(Endpoint::rates_list, {"GET"}, "GET");
    } else if (n == 4 && has_id && parse_id(seg[3], &r.id2)) {
      set(method == "PUT" ? Endpoint::rate_put : Endpoint::rate_get, {"GET", "PUT"}, "GET, PUT");
    }
  } else if (what == "exchanges") {
    if (n == 2) {
      set(Endpoint::exchanges_create, {"POST"}, "POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::exchange_get, {"GET"}, "GET");
    }
  } else if (what == "events") {
    if (n == 2) {
      set(Endpoint::events, {"GET"}, "GET");
    } else if (n == 3 && seg[2] == "stream") {
      set(Endpoint::events_stream, {"GET"}, "GET");
    }
  } else if (what == "subscriptions") {
    route_subscriptions(method, seg, n, has_id, set, &r);
  } else if (what == "orders") {
    if (n == 2) {
      set(Endpoint::orders_create, {"POST"}, "POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::order_get, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "cancel") {
      set(Endpoint::order_cancel, {"POST"}, "POST");
    }
  } else if (what == "purchases") {
    if (n == 2) {
      set(Endpoint::purchases_create, {"POST"}, "POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::purchase_get, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "refund") {
      set(Endpoint::purchase_refund, {"POST"}, "POST");
    }
  } else if (what == "checked-transfers") {
    if (n == 2) {
      set(method == "POST" ? Endpoint::check_backs_create : Endpoint::check_backs_list,
          {"GET", "POST"}, "GET, POST");
    } else if (n == 3 && has_id) {
      set(Endpoint::check_back_get, {"GET"}, "GET");
    } else if (n == 4 && has_id && seg[3] == "resolve") {
      set(Endpoint::check_back_resolve, {"POST"}, "POST");
    }
  } else if (what == "payments" && n == 4 && seg[3] == "callback" && !seg[2].empty()) {
    r.name = seg[2];
    set(Endpoint::payment_callback, {"POST"}, "POST");
  }
  return r;
}

bool is_json_media_type(std::string_view ct) {
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && (ct.back() == ' ' || ct.back() == '\t')) ct.remove_suffix(1);
  while (!ct.empty() && (ct.front() == ' ' || ct.front() == '\t')) ct.remove_prefix(1);
  constexpr std::string_view want = "application/json";
  return ct.size() == want.size() &&
         std::equal(ct.begin(), ct.end(), want.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

std::string transfer_results_body(const std::vector<TransferId>& ids,
                                  const std::vector<TransferOutcome>& outcomes) {
  fmt::memory_buffer out;
  out.push_back('[');
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    if (i > 0) out.push_back(',');
    fmt::format_to(std::back_inserter(out),
                   R"({{"index":{},"id":{},"result":"{}","timestamp":{},"position":{}}})", i,
                   ids[i], to_string(outcomes[i].result), outcomes[i].timestamp,
                   outcomes[i].position);
  }
  out.push_back(']');
  return fmt::to_string(out);
}

}  // namespace

struct Api::Impl {
  explicit Impl(Api& api) : api(api) {}

  Api& api;
  std::atomic<Engine*> engine{nullptr};
  std::atomic<bool> draining{false};
  /// An engine call failed with io_error or corruption (the engine is fail-stop).
  std::atomic<bool> failed{false};

  const ApiKey* find_key(std::string_view authorization) const {
    constexpr std::string_view bearer = "Bearer ";
    if (authorization.size() <= bearer.size() || authorization.substr(0, bearer.size()) != bearer) {
      return nullptr;
    }
    const std::string_view presented = authorization.substr(bearer.size());
    const ApiKey* found = nullptr;
    for (const ApiKey& k : api.config_.api_keys) {
      if (constant_time_equal(k.key, presented)) found = &k;
    }
    return found;
  }

  /// Issuer keys: answers 404 (no such account) or 403 (another ledger's), or runs `then`
  /// with the account's ledger. Admin keys: 404 or `then`. Never blocks: the lookup answers at
  /// once for an account in memory, else from a reader thread.
  void with_account_ledger(const ApiKey* key, AccountId id, const Reply& reply,
                           std::function<void()> then) {
    engine.load()->account_ledgers({id}, [key, id, reply, then = std::move(then)](
                                             const Status& s, std::vector<LedgerId> ledgers) {
      if (!s.is_ok()) return reply(status_error(s));
      if (ledgers[0] == 0)
        return reply(error(404, "not_found", "no account " + std::to_string(id)));
      if (!allowed(key, ledgers[0])) return reply(forbidden_ledger(ledgers[0]));
      then();
    });
  }

  /// Api::check_head with the route already found.
  std::optional<Response> check_head_in_order(const Request& head, const Route& r) const;
  /// Its last checks: content type (415) and declared size (413).
  std::optional<Response> check_body_head(const Request& head) const;
  void dispatch(const Route& r, const ApiKey* key, Request& req, const Reply& reply);
  void ledgers_create(const ApiKey* key, const Request& req, const Reply& reply);
  void ledgers_list(const ApiKey* key, const Reply& reply);
  void ledger_get(std::uint64_t id, const Reply& reply);
  void accounts_create(const ApiKey* key, const Request& req, const Reply& reply);
  void account_get(const ApiKey* key, const Route& r, const Reply& reply);
  void account_close(const ApiKey* key, std::uint64_t id, const Reply& reply);
  void account_history(const ApiKey* key, const Route& r, bool balances, const Reply& reply);
  void transfers_create(const ApiKey* key, const Request& req, const Reply& reply);
  void submit(std::vector<Transfer> transfers, const Reply& reply);
  void transfer_get(const ApiKey* key, const Route& r, const Reply& reply);
  void events(const ApiKey* key, const Route& r, const Reply& reply);
  void events_stream(const ApiKey* key, const Route& r, const std::string& last_event_id,
                     const Reply& reply);
  void rates_list(const ApiKey* key, const Reply& reply);
  void rate_get(const Route& r, const Reply& reply);
  void rate_put(const Route& r, const Request& req, const Reply& reply);
  void exchanges_create(const ApiKey* key, const Request& req, const Reply& reply);
  void exchange_get(const ApiKey* key, const Route& r, const Reply& reply);
  // Webhook subscriptions (docs/webhooks.md).
  std::atomic<WebhookDispatcher*> webhooks{nullptr};
  void subscriptions_create(const ApiKey* key, const Request& req, const Reply& reply);
  void subscriptions_list(const ApiKey* key, const Route& r, const Reply& reply);
  /// The subscription of the path if this key may see it, else answers 404 and nullopt.
  std::optional<Webhook> visible_subscription(const ApiKey* key, const Route& r,
                                              const Reply& reply);
  void subscription_get(const ApiKey* key, const Route& r, const Reply& reply);
  void subscription_delete(const ApiKey* key, const Route& r, const Reply& reply);
  void dead_letters_list(const ApiKey* key, const Route& r, const Reply& reply);
  void dead_letter_retry(const ApiKey* key, const Route& r, const Reply& reply);
  // Points + cash orders and payment callbacks (docs/workflows.md, "Orders over HTTP").
  void orders_create(const ApiKey* key, const Request& req, const Reply& reply);
  void order_get(const ApiKey* key, const Route& r, const Reply& reply);
  void order_cancel(const ApiKey* key, const Route& r, const Reply& reply);
  void payment_callback(const Route& r, const Request& req, const Reply& reply);
  // Check-backs (docs/workflows.md, "Check-backs over HTTP").
  void check_backs_create(const ApiKey* key, const Request& req, const Reply& reply);
  void check_backs_list(const ApiKey* key, const Route& r, const Reply& reply);
  void check_back_get(const ApiKey* key, const Route& r, const Reply& reply);
  void check_back_resolve(const Route& r, const Request& req, const Reply& reply);
  // Shopping rebates (docs/workflows.md, "Rebates over HTTP").
  void rules_get(const Route& r, const Reply& reply);
  void rules_put(const Route& r, const Request& req, const Reply& reply);
  void purchases_create(const ApiKey* key, const Request& req, const Reply& reply);
  void purchase_get(const ApiKey* key, const Route& r, const Reply& reply);
  void purchase_refund(const ApiKey* key, const Route& r, const Request& req, const Reply& reply);
  /// Runs `then` if the order exists and this key may see it; else answers 404.
  void with_visible_order(const ApiKey* key, OrderId id, const Reply& reply,
                          std::function<void(const OrderInfo&)> then);
};

Api::Api(Config config, Metrics* metrics)
    : config_(std::move(config)), metrics_(metrics), impl_(std::make_unique<Impl>(*this)) {}

Api::~Api() = default;

void Api::set_engine(Engine* engine) {
  impl_->engine.store(engine);
}

void Api::set_webhooks(WebhookDispatcher* webhooks) {
  impl_->webhooks.store(webhooks);
}

void Api::begin_shutdown() {
  impl_->draining.store(true);
}

std::optional<Response> Api::check_head(const Request& head) const {
  const Route r = route(head.method, head.target);
  std::optional<Response> refused = impl_->check_head_in_order(head, r);
  if (refused) refused->endpoint = r.endpoint;
  return refused;
}

std::optional<Response> Api::Impl::check_head_in_order(const Request& head, const Route& r) const {
  const ServerLimits& limits = api.config_.server;
  if (head.target.size() > limits.target_bytes_max) {
    return error(
        400, "target_too_long",
        "path and query longer than " + std::to_string(limits.target_bytes_max) + " bytes");
  }
  if (r.endpoint == Endpoint::unrouted) {
    if (!r.allow.empty()) {
      Response res = error(405, "method_not_allowed", head.method + " is not allowed here");
      res.allow = r.allow;
      return res;
    }
    return error(404, "not_found", "no such endpoint");
  }
  if (r.endpoint == Endpoint::healthz || r.endpoint == Endpoint::metrics) return std::nullopt;
  // A payment callback carries no key: its body's signature (checked once read) is its auth.
  if (r.endpoint == Endpoint::payment_callback) return check_body_head(head);
  const ApiKey* key = find_key(head.authorization);
  if (key == nullptr) {
    return error(
        401, "unauthorized",
        head.authorization.empty() ? "missing Authorization: Bearer <key>" : "unknown API key");
  }
  if (key->role != Role::admin) {
    if (r.endpoint == Endpoint::ledgers_create) {
      return error(403, "forbidden", "only an admin key may create ledgers");
    }
    if (r.endpoint == Endpoint::ledger_get && !allowed(key, r.id)) return forbidden_ledger(r.id);
    if (r.endpoint == Endpoint::rate_put) {
      return error(403, "forbidden", "only an admin key may set exchange rates");
    }
    if (r.endpoint == Endpoint::rate_get && !allowed(key, r.id) && !allowed(key, r.id2)) {
      return forbidden_ledger(r.id);
    }
    if (r.endpoint == Endpoint::check_back_resolve) {
      return error(403, "forbidden", "only an admin key may resolve a parked check-back");
    }
    // An issuer sets and reads the earning rules of its own ledgers.
    if ((r.endpoint == Endpoint::rules_get || r.endpoint == Endpoint::rules_put) &&
        !allowed(key, r.id)) {
      return forbidden_ledger(r.id);
    }
  }
  return check_body_head(head);
}

std::optional<Response> Api::Impl::check_body_head(const Request& head) const {
  const ServerLimits& limits = api.config_.server;
  const bool has_body = head.chunked || head.content_length.value_or(0) > 0 || !head.body.empty();
  if (has_body && !(head.content_type && is_json_media_type(*head.content_type))) {
    return error(415, "unsupported_media_type", "a body must be Content-Type: application/json");
  }
  const std::uint64_t size =
      std::max<std::uint64_t>(head.content_length.value_or(0), head.body.size());
  if (size > limits.body_bytes_max) {
    return error(413, "body_too_large",
                 "body larger than " + std::to_string(limits.body_bytes_max) + " bytes");
  }
  return std::nullopt;
}

void Api::handle(Request request, Reply reply) {
  const auto started = SteadyClock::now();
  const Route r = route(request.method, request.target);
  Metrics* metrics = metrics_;
  const std::uint32_t slow_ms = config_.server.slow_request_ms;
  const bool counted = r.endpoint != Endpoint::healthz && r.endpoint != Endpoint::metrics;
  if (counted) metrics->inflight_requests.fetch_add(1);
  // Every answer passes here once: metrics, slow-request log, then the caller's reply.
  Impl* impl = impl_.get();
  Reply done = [impl, metrics, counted, slow_ms, started, endpoint = r.endpoint,
                method = request.method, target = request.target,
                reply = std::move(reply)](Response res) {
    res.endpoint = endpoint;
    const auto ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - started).count());
    metrics->request(endpoint, res.status, ns);
    if (res.status == 500) {
      // The engine is fail-stop after an I/O error: say so on /healthz from now on.
      if (res.body.find("\"engine_failed\"") != std::string::npos) impl->failed.store(true);
      spdlog::error("{} {} answered {}: {}", method, target.substr(0, target.find('?')), res.status,
                    res.body);
    } else if (ns / 1'000'000 >= slow_ms) {
      spdlog::warn("slow request: {} {} answered {} in {} ms", method,
                   target.substr(0, target.find('?')), res.status, ns / 1'000'000);
    }
    if (counted) metrics->inflight_requests.fetch_sub(1);
    reply(std::move(res));
  };
  // The server checked the head before reading the body (head_checked); a caller without a
  // server (tests) has it checked here.
  if (!request.head_checked) {
    if (std::optional<Response> refused = impl_->check_head_in_order(request, r)) {
      done(std::move(*refused));
      return;
    }
  }
  if (r.endpoint == Endpoint::healthz) {
    if (impl_->draining.load()) {
      done(error(503, "shutting_down", "pointexd is shutting down"));
    } else if (impl_->engine.load() == nullptr) {
      done(error(503, "not_ready", "the engine is still recovering"));
    } else if (impl_->failed.load() || impl_->engine.load()->stats().log_failed) {
      done(error(503, "engine_failed", "the engine stopped after an I/O error; restart pointexd"));
    } else {
      done(ok_json(200, {{"status", "ok"}}));
    }
    return;
  }
  if (r.endpoint == Endpoint::metrics) {
    Engine* e = impl_->engine.load();
    std::optional<EngineStats> stats;
    if (e != nullptr) stats = e->stats();
    Response res;
    res.content_type = "text/plain; version=0.0.4";
    res.body = metrics->render(stats ? &*stats : nullptr);
    if (WebhookDispatcher* hooks = impl_->webhooks.load(); hooks != nullptr && stats) {
      res.body += hooks->render_metrics(stats->committed_position);
    }
    done(std::move(res));
    return;
  }
  if (impl_->draining.load()) {
    done(error(503, "shutting_down", "pointexd is shutting down; retry elsewhere or later"));
    return;
  }
  if (impl_->engine.load() == nullptr) {
    done(error(503, "not_ready", "the engine is still recovering; retry"));
    return;
  }
  if (metrics->inflight_requests.load() > config_.server.inflight_requests_max) {
    done(error(429, "overloaded", "too many requests in flight; nothing was applied"));
    return;
  }
  impl_->dispatch(r, impl_->find_key(request.authorization), request, done);
}

void Api::Impl::dispatch(const Route& r, const ApiKey* key, Request& req, const Reply& reply) {
  switch (r.endpoint) {
    case Endpoint::ledgers_create:
      return ledgers_create(key, req, reply);
    case Endpoint::ledgers_list:
      return ledgers_list(key, reply);
    case Endpoint::ledger_get:
      return ledger_get(r.id, reply);
    case Endpoint::accounts_create:
      return accounts_create(key, req, reply);
    case Endpoint::account_get:
      return account_get(key, r, reply);
    case Endpoint::account_close:
      return account_close(key, r.id, reply);
    case Endpoint::account_transfers:
      return account_history(key, r, false, reply);
    case Endpoint::account_balances:
      return account_history(key, r, true, reply);
    case Endpoint::transfers_create:
      return transfers_create(key, req, reply);
    case Endpoint::transfer_get:
      return transfer_get(key, r, reply);
    case Endpoint::events:
      return events(key, r, reply);
    case Endpoint::events_stream:
      return events_stream(key, r, req.last_event_id, reply);
    case Endpoint::rates_list:
      return rates_list(key, reply);
    case Endpoint::rate_get:
      return rate_get(r, reply);
    case Endpoint::rate_put:
      return rate_put(r, req, reply);
    case Endpoint::exchanges_create:
      return exchanges_create(key, req, reply);
    case Endpoint::exchange_get:
      return exchange_get(key, r, reply);
    case Endpoint::subscriptions_create:
      return subscriptions_create(key, req, reply);
    case Endpoint::subscriptions_list:
      return subscriptions_list(key, r, reply);
    case Endpoint::subscription_get:
      return subscription_get(key, r, reply);
    case Endpoint::subscription_delete:
      return subscription_delete(key, r, reply);
    case Endpoint::dead_letters_list:
      return dead_letters_list(key, r, reply);
    case Endpoint::dead_letter_retry:
      return dead_letter_retry(key, r, reply);
    case Endpoint::orders_create:
      return orders_create(key, req, reply);
    case Endpoint::order_get:
      return order_get(key, r, reply);
    case Endpoint::order_cancel:
      return order_cancel(key, r, reply);
    case Endpoint::payment_callback:
      return payment_callback(r, req, reply);
    case Endpoint::check_backs_create:
      return check_backs_create(key, req, reply);
    case Endpoint::check_backs_list:
      return check_backs_list(key, r, reply);
    case Endpoint::check_back_get:
      return check_back_get(key, r, reply);
    case Endpoint::check_back_resolve:
      return check_back_resolve(r, req, reply);
    case Endpoint::rules_get:
      return rules_get(r, reply);
    case Endpoint::rules_put:
      return rules_put(r, req, reply);
    case Endpoint::purchases_create:
      return purchases_create(key, req, reply);
    case Endpoint::purchase_get:
      return purchase_get(key, r, reply);
    case Endpoint::purchase_refund:
      return purchase_refund(key, r, req, reply);
    default:
      break;
  }
  reply(error(404, "not_found", "no such endpoint"));
}

void Api::Impl::ledgers_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  Ledger ledger;
  if (!parse_body(req.body, &body, &err) || !map_ledger(body, &ledger, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  e->create_ledger(ledger, [e, id = ledger.id, reply](const Status& s, LedgerResult result) {
    if (!s.is_ok()) return reply(status_error(s));
    switch (result) {
      case LedgerResult::ok:
      case LedgerResult::exists: {
        const std::optional<Ledger> stored = e->ledger(id);
        if (!stored) return reply(error(500, "internal", "ledger vanished"));
        return reply(ok_json(result == LedgerResult::ok ? 201 : 200, ledger_json(*stored)));
      }
      case LedgerResult::exists_with_different_fields:
        return reply(error(409, "exists_with_different_fields",
                           "a ledger with this id exists with other values"));
      case LedgerResult::code_taken:
        return reply(error(409, "code_taken", "another ledger uses this code", "code"));
      case LedgerResult::id_must_not_be_zero:
        return reply(error(400, "invalid_field", "id must not be zero", "id"));
      case LedgerResult::code_invalid:
        return reply(error(400, "invalid_field", "code: 1-16 of A-Z, 0-9 and _", "code"));
      case LedgerResult::name_too_long:
        return reply(error(400, "invalid_field", "name too long", "name"));
    }
    reply(error(500, "internal", "unknown ledger result"));
  });
}

void Api::Impl::ledgers_list(const ApiKey* key, const Reply& reply) {
  json list = json::array();
  for (const Ledger& l : engine.load()->ledgers()) {
    if (allowed(key, l.id)) list.push_back(ledger_json(l));
  }
  reply(ok_json(200, {{"ledgers", std::move(list)}}));
}

void Api::Impl::ledger_get(std::uint64_t id, const Reply& reply) {
  const std::optional<Ledger> l = engine.load()->ledger(id);
  if (!l) return reply(error(404, "not_found", "no ledger " + std::to_string(id)));
  reply(ok_json(200, ledger_json(*l)));
}

void Api::Impl::accounts_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  std::vector<AccountSpec> specs;
  Engine* e = engine.load();
  if (!parse_body(req.body, &body, &err) ||
      !map_accounts(body, e->options().batch_items_max, &specs, &err)) {
    return reply(error(err));
  }
  for (const AccountSpec& a : specs) {
    if (!allowed(key, a.ledger)) return reply(forbidden_ledger(a.ledger));
  }
  api.metrics_->batch(Endpoint::accounts_create, specs.size());
  if (specs.empty()) return reply(ok_json(200, json::array()));
  std::vector<AccountId> ids;
  ids.reserve(specs.size());
  for (const AccountSpec& a : specs) ids.push_back(a.id);
  e->create_accounts(std::move(specs), [ids = std::move(ids), reply](
                                           const Status& s, std::vector<AccountResult> results) {
    if (!s.is_ok()) return reply(status_error(s));
    json out = json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      out.push_back({{"index", i}, {"id", ids[i]}, {"result", to_string(results[i])}});
    }
    reply(ok_json(200, out));
  });
}

void Api::Impl::account_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  std::uint64_t min_position = 0;
  if (!parse_query(r.query, {"min_position"}, &q, &err) ||
      !query_uint(q, "min_position", 0, UINT64_MAX, &min_position, &err)) {
    return reply(error(err));
  }
  engine.load()->read_account(
      r.id, min_position, [key, id = r.id, reply](const Status& s, std::optional<Account> a) {
        if (!s.is_ok()) return reply(status_error(s));
        if (!a) return reply(error(404, "not_found", "no account " + std::to_string(id)));
        if (!allowed(key, a->spec.ledger)) return reply(forbidden_ledger(a->spec.ledger));
        reply(ok_json(200, account_json(*a)));
      });
}

void Api::Impl::account_close(const ApiKey* key, std::uint64_t id, const Reply& reply) {
  Engine* e = engine.load();
  with_account_ledger(key, id, reply, [e, id, reply] {
    e->close_account(id, [id, reply](const Status& s, CloseOutcome outcome) {
      if (!s.is_ok()) return reply(status_error(s));
      switch (outcome.result) {
        case CloseResult::ok: {
          // The close's position, for read-your-writes (`min_position`) like every write.
          json body = account_json(outcome.account);
          body["position"] = outcome.position;
          return reply(ok_json(200, body));
        }
        case CloseResult::account_not_found:
          return reply(error(404, "not_found", "no account " + std::to_string(id)));
        case CloseResult::account_not_empty:
          return reply(
              error(409, "account_not_empty", "the balance or a pending amount is not zero"));
      }
      reply(error(500, "internal", "unknown close result"));
    });
  });
}

void Api::Impl::account_history(const ApiKey* key, const Route& r, bool balances,
                                const Reply& reply) {
  Engine* e = engine.load();
  std::map<std::string, std::string> q;
  ApiError err;
  HistoryQuery hq;
  hq.account = r.id;
  std::uint64_t limit = 100;
  std::uint64_t code = 0;
  if (!parse_query(r.query, {"limit", "after", "code", "from", "to", "min_position"}, &q, &err) ||
      !query_uint(q, "limit", 1, e->options().history_page_max, &limit, &err) ||
      !query_uint(q, "after", 1, UINT64_MAX, &hq.before_position, &err) ||
      !query_uint(q, "code", 1, 65535, &code, &err) ||
      !query_uint(q, "from", 0, UINT64_MAX, &hq.from_ns, &err) ||
      !query_uint(q, "to", 0, UINT64_MAX, &hq.to_ns, &err) ||
      !query_uint(q, "min_position", 0, UINT64_MAX, &hq.min_position, &err)) {
    return reply(error(err));
  }
  hq.limit = static_cast<std::uint32_t>(limit);
  hq.code = static_cast<std::uint16_t>(code);
  with_account_ledger(key, hq.account, reply, [e, hq, balances, reply] {
    e->account_history(hq, [balances, reply](const Status& s, HistoryPage page) {
      if (!s.is_ok()) return reply(status_error(s));
      json items = json::array();
      for (const AccountEvent& ev : page.events) {
        items.push_back(balances ? history_balance_json(ev) : history_transfer_json(ev));
      }
      json next = page.next_before_position == 0 ? json(nullptr) : json(page.next_before_position);
      reply(ok_json(200, {{balances ? "balances" : "transfers", std::move(items)},
                          {"next", std::move(next)}}));
    });
  });
}

void Api::Impl::transfers_create(const ApiKey* key, const Request& req, const Reply& reply) {
  ApiError err;
  std::vector<Transfer> transfers;
  Engine* e = engine.load();
  if (!parse_transfers(req.body, e->options().batch_items_max, &transfers, &err)) {
    return reply(error(err));
  }
  api.metrics_->batch(Endpoint::transfers_create, transfers.size());
  if (transfers.empty()) return reply(ok_json(200, json::array()));
  if (key->role == Role::admin) return submit(std::move(transfers), reply);
  // Issuer key: every ledger named, and every existing account named, must be one of its own.
  std::vector<AccountId> accounts;
  for (const Transfer& t : transfers) {
    if (t.ledger != 0 && !allowed(key, t.ledger)) return reply(forbidden_ledger(t.ledger));
    if (t.debit_account != 0) accounts.push_back(t.debit_account);
    if (t.credit_account != 0) accounts.push_back(t.credit_account);
  }
  std::sort(accounts.begin(), accounts.end());
  accounts.erase(std::unique(accounts.begin(), accounts.end()), accounts.end());
  // Unknown accounts (ledger 0) are the engine's to answer, item by item.
  auto shared = std::make_shared<std::vector<Transfer>>(std::move(transfers));
  e->account_ledgers(std::move(accounts),
                     [this, key, shared, reply](const Status& s, std::vector<LedgerId> ledgers) {
                       if (!s.is_ok()) return reply(status_error(s));
                       for (LedgerId ledger : ledgers) {
                         if (ledger != 0 && !allowed(key, ledger))
                           return reply(forbidden_ledger(ledger));
                       }
                       submit(std::move(*shared), reply);
                     });
}

void Api::Impl::submit(std::vector<Transfer> transfers, const Reply& reply) {
  // The answer names each item's id: keep the ids, not a copy of the transfers.
  std::vector<TransferId> ids;
  ids.reserve(transfers.size());
  for (const Transfer& t : transfers) ids.push_back(t.id);
  Metrics* metrics = api.metrics_;
  engine.load()->submit_transfers(std::move(transfers),
                                  [ids = std::move(ids), metrics, reply](
                                      const Status& s, std::vector<TransferOutcome> outcomes) {
                                    if (!s.is_ok()) return reply(status_error(s));
                                    metrics->transfers(outcomes);
                                    Response res;
                                    res.body = transfer_results_body(ids, outcomes);
                                    reply(std::move(res));
                                  });
}

void Api::Impl::transfer_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  std::uint64_t debit_account = 0;
  std::uint64_t min_position = 0;
  if (!parse_query(r.query, {"debit_account", "min_position"}, &q, &err) ||
      !query_uint(q, "debit_account", 1, UINT64_MAX, &debit_account, &err) ||
      !query_uint(q, "min_position", 0, UINT64_MAX, &min_position, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  auto answer = [key, id = r.id, reply](const Status& s, std::vector<TransferInfo> found) {
    if (!s.is_ok()) return reply(status_error(s));
    const std::size_t all = found.size();
    found.erase(std::remove_if(found.begin(), found.end(),
                               [&](const TransferInfo& t) { return !allowed(key, t.ledger); }),
                found.end());
    if (found.empty() && all > 0) {
      return reply(error(403, "forbidden", "this key may not see that transfer's ledger"));
    }
    if (found.empty()) return reply(error(404, "not_found", "no transfer " + std::to_string(id)));
    if (found.size() > 1) {
      json accounts = json::array();
      for (const TransferInfo& t : found) accounts.push_back(t.debit_account);
      json body = {{"error", "ambiguous_id"},
                   {"message", "several debit accounts used this id; give ?debit_account="},
                   {"debit_accounts", std::move(accounts)}};
      return reply(ok_json(409, body));
    }
    reply(ok_json(200, transfer_json(found.front())));
  };
  if (debit_account == 0) return e->find_transfers(r.id, min_position, std::move(answer));
  e->read_transfer(debit_account, r.id, min_position,
                   [answer = std::move(answer)](const Status& s, std::optional<TransferInfo> t) {
                     std::vector<TransferInfo> found;
                     if (t) found.push_back(std::move(*t));
                     answer(s, std::move(found));
                   });
}

void Api::Impl::events(const ApiKey* key, const Route& r, const Reply& reply) {
  Engine* e = engine.load();
  std::map<std::string, std::string> q;
  ApiError err;
  EventQuery query;
  std::uint64_t limit = 100;
  if (!parse_query(r.query, {"after", "limit"}, &q, &err) ||
      !query_uint(q, "after", 0, UINT64_MAX, &query.after_position, &err) ||
      !query_uint(q, "limit", 1, e->options().history_page_max, &limit, &err)) {
    return reply(error(err));
  }
  query.limit = static_cast<std::uint32_t>(limit);
  if (key->role != Role::admin) {
    // The engine skips other ledgers' events before reading their balances; a request looks
    // at most this many, and `next` says where it stopped (an empty page with `next` past
    // `after` means: nothing of yours there, read on).
    query.ledgers = key->ledgers;
    query.scan_max = events_scanned_max;
  }
  e->read_events(std::move(query), [reply](const Status& s, EventPage page) {
    if (!s.is_ok()) return reply(status_error(s));
    json items = json::array();
    for (const FeedEvent& ev : page.events) items.push_back(event_json(ev));
    reply(ok_json(200, {{"events", std::move(items)}, {"next", page.next_after_position}}));
  });
}

void Api::Impl::events_stream(const ApiKey* key, const Route& r, const std::string& last_event_id,
                              const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  std::uint64_t after = 0;
  // A reconnecting EventSource sends the last id it saw; an explicit ?after= wins.
  if (!last_event_id.empty()) q.emplace("after", last_event_id);
  std::map<std::string, std::string> given;
  if (!parse_query(r.query, {"after"}, &given, &err)) return reply(error(err));
  for (auto& [name, value] : given) q[name] = value;
  if (!query_uint(q, "after", 0, UINT64_MAX, &after, &err)) return reply(error(err));
  Response res;
  res.content_type = "text/event-stream";
  res.stream = true;
  res.stream_after = after;
  res.key = key;
  reply(std::move(res));
}

// ---------------------------------------------------------------------------------------------
// Exchange rates and exchanges (docs/workflows.md).

void Api::Impl::rates_list(const ApiKey* key, const Reply& reply) {
  json list = json::array();
  for (const Rate& r : engine.load()->rates()) {
    if (allowed(key, r.from_ledger) || allowed(key, r.to_ledger)) list.push_back(rate_json(r));
  }
  reply(ok_json(200, {{"rates", std::move(list)}}));
}

void Api::Impl::rate_get(const Route& r, const Reply& reply) {
  const std::optional<Rate> rate = engine.load()->rate(r.id, r.id2);
  if (!rate) {
    return reply(
        error(404, "not_found", fmt::format("no rate from ledger {} to ledger {}", r.id, r.id2)));
  }
  reply(ok_json(200, rate_json(*rate)));
}

void Api::Impl::rate_put(const Route& r, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  Rate rate;
  if (!parse_body(req.body, &body, &err) || !map_rate(body, &rate, &err)) return reply(error(err));
  rate.from_ledger = r.id;
  rate.to_ledger = r.id2;
  Engine* e = engine.load();
  e->set_rate(rate, [e, rate, reply](const Status& s, RateResult result) {
    if (!s.is_ok()) return reply(status_error(s));
    const std::string code(to_string(result));
    switch (result) {
      case RateResult::ok: {
        const std::optional<Rate> stored = e->rate(rate.from_ledger, rate.to_ledger);
        if (!stored) return reply(error(500, "internal", "rate vanished"));
        return reply(ok_json(200, rate_json(*stored)));
      }
      case RateResult::from_ledger_not_found:
        return reply(error(404, code, "no ledger " + std::to_string(rate.from_ledger)));
      case RateResult::to_ledger_not_found:
        return reply(error(404, code, "no ledger " + std::to_string(rate.to_ledger)));
      case RateResult::ledgers_must_be_different:
        return reply(error(400, code, "a rate is between two different ledgers"));
      case RateResult::numerator_must_not_be_zero:
        return reply(error(400, code, "numerator must not be zero", "numerator"));
      case RateResult::denominator_must_not_be_zero:
        return reply(error(400, code, "denominator must not be zero", "denominator"));
      case RateResult::fee_bps_too_high:
        return reply(error(400, code, "fee_bps is at most 10000", "fee_bps"));
      case RateResult::from_exchange_account_not_found:
      case RateResult::from_exchange_account_ledger_mismatch:
        return reply(error(400, code,
                           "from_exchange_account must be an account of ledger " +
                               std::to_string(rate.from_ledger),
                           "from_exchange_account"));
      case RateResult::to_exchange_account_not_found:
      case RateResult::to_exchange_account_ledger_mismatch:
        return reply(error(
            400, code,
            "to_exchange_account must be an account of ledger " + std::to_string(rate.to_ledger),
            "to_exchange_account"));
    }
    reply(error(500, "internal", "unknown rate result"));
  });
}

void Api::Impl::exchanges_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  Exchange ex;
  if (!parse_body(req.body, &body, &err) || !map_exchange(body, &ex, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  // Every answer is 200 with its result (a refusal, a failed leg): like a transfer's, the
  // outcome is the exchange's, not the request's. Status errors are the request's.
  auto run = [e, ex, reply] {
    e->exchange(ex, [id = ex.id, reply](const Status& s, ExchangeOutcome outcome) {
      if (!s.is_ok()) return reply(status_error(s));
      reply(ok_json(200, exchange_outcome_json(id, outcome)));
    });
  };
  if (key->role == Role::admin) return run();
  // An issuer key must hold both accounts' ledgers (an account that does not exist is left to
  // the engine's answer: from/to_account_not_found).
  e->account_ledgers({ex.from_account, ex.to_account},
                     [key, reply, run](const Status& s, std::vector<LedgerId> ledgers) {
                       if (!s.is_ok()) return reply(status_error(s));
                       for (const LedgerId l : ledgers) {
                         if (l != 0 && !allowed(key, l)) return reply(forbidden_ledger(l));
                       }
                       run();
                     });
}

void Api::Impl::exchange_get(const ApiKey* key, const Route& r, const Reply& reply) {
  engine.load()->lookup_exchange(
      r.id, [key, id = r.id, reply](const Status& s, std::optional<ExchangeInfo> info) {
        if (!s.is_ok()) return reply(status_error(s));
        // An issuer key sees the exchanges touching one of its ledgers; others are not found.
        if (!info || (!allowed(key, info->from_ledger) && !allowed(key, info->to_ledger))) {
          return reply(error(404, "not_found", "no exchange " + std::to_string(id)));
        }
        reply(ok_json(200, exchange_info_json(*info)));
      });
}

Status Api::open_stream(const Response& accepted, StreamSink sink,
                        std::unique_ptr<Subscription>* subscription) {
  Engine* e = impl_->engine.load();
  if (e == nullptr || !accepted.stream || accepted.key == nullptr) {
    return Status::invalid_argument("not an accepted stream");
  }
  const ApiKey* key = accepted.key;
  auto open = std::make_shared<bool>(true);
  return e->subscribe(
      accepted.stream_after,
      [key, sink = std::move(sink), open](const std::vector<FeedEvent>& events) {
        if (!*open) return;
        fmt::memory_buffer frames;
        for (const FeedEvent& ev : events) {
          if (!event_allowed(key, ev)) continue;
          fmt::format_to(std::back_inserter(frames), "id: {}\nevent: {}\ndata: {}\n\n", ev.position,
                         to_string(ev.type), event_json(ev).dump());
        }
        if (frames.size() > 0) *open = sink(fmt::to_string(frames));
      },
      subscription);
}

// ---------------------------------------------------------------------------------------------
// Webhook subscriptions (docs/webhooks.md). Admin keys see every subscription; an issuer key's
// subscriptions carry its ledgers (their events only), and it sees those within its ledgers.

namespace {

bool subscription_visible(const ApiKey* key, const Webhook& w) {
  if (key->role == Role::admin) return true;
  return !w.spec.ledgers.empty() && std::all_of(w.spec.ledgers.begin(), w.spec.ledgers.end(),
                                                [key](LedgerId l) { return allowed(key, l); });
}

Response subscription_refused(const WebhookOutcome& o) {
  switch (o.result) {
    case WebhookResult::not_found:
      return error(404, "not_found", "no such subscription");
    case WebhookResult::too_many_webhooks:
      return error(409, "too_many_subscriptions",
                   "the most subscriptions exist already (webhooks.subscriptions_max)");
    default:
      return error(400, "invalid_subscription",
                   std::string("refused: ") + std::string(to_string(o.result)) +
                       " (a ledger of this key may not exist yet)");
  }
}

}  // namespace

void Api::Impl::subscriptions_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  WebhookSpec spec;
  bool secret_given = false;
  if (!parse_body(req.body, &body, &err) || !map_subscription(body, &spec, &secret_given, &err)) {
    return reply(error(err));
  }
  if (!secret_given) spec.secret = generate_webhook_secret();
  if (key->role != Role::admin) {
    if (key->ledgers.empty()) return reply(error(403, "forbidden", "this key has no ledgers"));
    spec.ledgers = key->ledgers;  // its events only, as GET /v1/events shows it
  }
  engine.load()->create_webhook(spec, [reply](const Status& s, WebhookOutcome o) {
    if (!s.is_ok()) return reply(status_error(s));
    if (o.result != WebhookResult::ok) return reply(subscription_refused(o));
    spdlog::info("webhooks: subscription {} created for {}", o.webhook.id, o.webhook.spec.url);
    reply(ok_json(201, subscription_json(o.webhook, true)));
  });
}

void Api::Impl::subscriptions_list(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  json items = json::array();
  for (const Webhook& w : engine.load()->webhooks()) {
    if (subscription_visible(key, w)) items.push_back(subscription_json(w, false));
  }
  reply(ok_json(200, {{"subscriptions", std::move(items)}}));
}

std::optional<Webhook> Api::Impl::visible_subscription(const ApiKey* key, const Route& r,
                                                       const Reply& reply) {
  std::optional<Webhook> w = engine.load()->webhook(r.id);
  if (!w || !subscription_visible(key, *w)) {
    // Another issuer's subscription is not named: the same 404 as none.
    reply(error(404, "not_found", "no subscription " + std::to_string(r.id)));
    return std::nullopt;
  }
  return w;
}

void Api::Impl::subscription_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  if (std::optional<Webhook> w = visible_subscription(key, r, reply)) {
    reply(ok_json(200, subscription_json(*w, false)));
  }
}

void Api::Impl::subscription_delete(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  if (!visible_subscription(key, r, reply)) return;
  engine.load()->delete_webhook(r.id, [reply](const Status& s, WebhookOutcome o) {
    if (!s.is_ok()) return reply(status_error(s));
    if (o.result != WebhookResult::ok) return reply(subscription_refused(o));
    spdlog::info("webhooks: subscription {} deleted", o.webhook.id);
    json j = subscription_json(o.webhook, false);
    j["deleted"] = true;
    reply(ok_json(200, j));
  });
}

void Api::Impl::dead_letters_list(const ApiKey* key, const Route& r, const Reply& reply) {
  Engine* e = engine.load();
  std::map<std::string, std::string> q;
  ApiError err;
  std::uint64_t after = 0;
  std::uint64_t limit = 100;
  if (!parse_query(r.query, {"after", "limit"}, &q, &err) ||
      !query_uint(q, "after", 0, UINT64_MAX, &after, &err) ||
      !query_uint(q, "limit", 1, e->options().history_page_max, &limit, &err)) {
    return reply(error(err));
  }
  if (!visible_subscription(key, r, reply)) return;
  DeadLetterPage page;
  if (!e->webhook_dead_letters(r.id, after, static_cast<std::uint32_t>(limit), &page)) {
    return reply(error(404, "not_found", "no subscription " + std::to_string(r.id)));
  }
  json items = json::array();
  for (const DeadLetter& d : page.dead_letters) items.push_back(dead_letter_json(d));
  json next = page.next_after_position == 0 ? json(nullptr) : json(page.next_after_position);
  reply(ok_json(200, {{"dead_letters", std::move(items)}, {"next", std::move(next)}}));
}

void Api::Impl::dead_letter_retry(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  if (!visible_subscription(key, r, reply)) return;
  DeadLetterPage page;
  if (r.id2 == 0 || !engine.load()->webhook_dead_letters(r.id, r.id2 - 1, 1, &page) ||
      page.dead_letters.empty() || page.dead_letters[0].position != r.id2) {
    return reply(error(404, "not_found", "no dead letter at position " + std::to_string(r.id2)));
  }
  WebhookDispatcher* hooks = webhooks.load();
  if (hooks == nullptr) {
    return reply(error(503, "webhooks_disabled", "webhook delivery is not running"));
  }
  if (!hooks->redeliver(r.id, r.id2)) {
    return reply(error(429, "overloaded", "too many redeliveries queued; retry later"));
  }
  reply(ok_json(202, {{"status", "queued"}, {"subscription", r.id}, {"position", r.id2}}));
}

// ---------------------------------------------------------------------------------------------
// Points + cash orders and payment callbacks (docs/workflows.md, "Orders over HTTP").

namespace {

/// 200 with the order for ok and exists (its `result` says which); the refusals as errors.
Response order_answer(const OrderOutcome& o) {
  const std::string code(to_string(o.result));
  switch (o.result) {
    case OrderResult::ok:
    case OrderResult::exists: {
      if (!o.order) return error(500, "internal", "an order answered without its state");
      json j = order_json(*o.order);
      j["result"] = code;
      return ok_json(200, j);
    }
    case OrderResult::exists_with_different_fields:
      return error(409, code, "an order with this id and another body exists");
    case OrderResult::member_account_not_found:
      return error(404, code, "no such member account", "member_account");
    case OrderResult::merchant_account_not_found:
      return error(404, code, "no such merchant account", "merchant_account");
    case OrderResult::provider_not_found:
      return error(404, code, "no payment provider of that name is configured", "provider");
    case OrderResult::not_found:
      return error(404, code, "no such order");
    case OrderResult::already_completed:
    case OrderResult::already_finished: {
      Response r = error(
          409, code,
          "the order is " +
              std::string(o.order ? to_string(o.order->status) : std::string_view("finished")) +
              ": it cannot be cancelled");
      return r;
    }
    case OrderResult::id_must_not_be_zero:
    case OrderResult::id_reserved:
      return error(400, code, "id must be 1 to 2^62 - 1", "id");
    case OrderResult::points_must_not_be_zero:
      return error(400, code, "points must not be zero", "points");
    case OrderResult::accounts_must_be_different:
      return error(400, code, "the member and the merchant must be different accounts");
    case OrderResult::ledger_mismatch:
      return error(400, code, "the member and the merchant must be on one ledger");
    case OrderResult::currency_invalid:
      return error(400, code, "currency must be three of A-Z (ISO 4217)", "cash.currency");
    case OrderResult::timeout_too_long:
      return error(400, code, "timeout_s is over the configured maximum", "timeout_s");
  }
  return error(500, "internal", "unknown order result");
}

}  // namespace

void Api::Impl::orders_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  Order order;
  if (!parse_body(req.body, &body, &err) || !map_order(body, &order, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  auto run = [e, order, reply] {
    e->create_order(order, [reply](const Status& s, OrderOutcome o) {
      if (!s.is_ok()) return reply(status_error(s));
      reply(order_answer(o));
    });
  };
  if (key->role == Role::admin) return run();
  // An issuer key must hold the accounts' ledger (one that does not exist is the engine's
  // answer: member/merchant_account_not_found).
  e->account_ledgers({order.member_account, order.merchant_account},
                     [key, reply, run](const Status& s, std::vector<LedgerId> ledgers) {
                       if (!s.is_ok()) return reply(status_error(s));
                       for (const LedgerId l : ledgers) {
                         if (l != 0 && !allowed(key, l)) return reply(forbidden_ledger(l));
                       }
                       run();
                     });
}

void Api::Impl::with_visible_order(const ApiKey* key, OrderId id, const Reply& reply,
                                   std::function<void(const OrderInfo&)> then) {
  engine.load()->lookup_order(
      id, [key, id, reply, then = std::move(then)](const Status& s, std::optional<OrderInfo> info) {
        if (!s.is_ok()) return reply(status_error(s));
        // Another issuer's order is not named: the same 404 as none.
        if (!info || !allowed(key, info->ledger)) {
          return reply(error(404, "not_found", "no order " + std::to_string(id)));
        }
        then(*info);
      });
}

void Api::Impl::order_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  with_visible_order(key, r.id, reply,
                     [reply](const OrderInfo& info) { reply(ok_json(200, order_json(info))); });
}

void Api::Impl::order_cancel(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  Engine* e = engine.load();
  with_visible_order(key, r.id, reply, [e, id = r.id, reply](const OrderInfo&) {
    e->cancel_order(id, [reply](const Status& s, OrderOutcome o) {
      if (!s.is_ok()) return reply(status_error(s));
      reply(order_answer(o));
    });
  });
}

void Api::Impl::payment_callback(const Route& r, const Request& req, const Reply& reply) {
  const std::string provider(r.name);
  const auto it =
      std::find_if(api.config_.payment_providers.begin(), api.config_.payment_providers.end(),
                   [&](const PaymentProviderConfig& p) { return p.name == provider; });
  if (it == api.config_.payment_providers.end()) {
    return reply(error(404, "provider_not_found", "no payment provider " + provider));
  }
  // The signature is the only credential: checked on the raw body before anything is read.
  if (req.signature.empty() || it->secret.empty() ||
      !client::hmac_sha256_verify(it->secret, req.body, req.signature)) {
    api.metrics_->payment_callback_refused();
    spdlog::warn("payment callback of provider {} refused: {} signature", provider,
                 req.signature.empty() ? "no" : "a wrong");
    return reply(error(401, "bad_signature",
                       "X-Signature must be the hex HMAC-SHA256 of the body with the "
                       "provider's secret; nothing was recorded"));
  }
  json body;
  ApiError err;
  std::string payment_id;
  PaymentStatus status = PaymentStatus::failed;
  if (!parse_body(req.body, &body, &err) || !map_payment_result(body, &payment_id, &status, &err)) {
    return reply(error(err));
  }
  Metrics* metrics = api.metrics_;
  engine.load()->payment_result(
      provider, payment_id, status,
      [metrics, payment_id, reply](const Status& s, PaymentResultAnswer a) {
        if (!s.is_ok()) return reply(status_error(s));
        metrics->payment_callback(a.outcome);
        if (a.outcome == PaymentResultOutcome::payment_not_found ||
            a.outcome == PaymentResultOutcome::provider_not_found) {
          Response res = error(404, std::string(to_string(a.outcome)),
                               "no order has payment '" + payment_id +
                                   "' at this provider; the result was logged, not recorded");
          return reply(res);
        }
        json j = {{"payment_id", payment_id}, {"result", to_string(a.outcome)}};
        if (a.order) {
          j["order_id"] = a.order->request.id;
          j["order_status"] = to_string(a.order->status);
        }
        reply(ok_json(200, j));
      });
}

// ---------------------------------------------------------------------------------------------
// Shopping rebates (docs/workflows.md, "Rebates over HTTP").

namespace {

Response rules_error(RulesResult r) {
  const std::string code(to_string(r));
  switch (r) {
    case RulesResult::ok:
      break;
    case RulesResult::ledger_not_found:
      return error(404, code, "no such ledger");
    case RulesResult::issuer_account_not_found:
      return error(404, code, "no such issuer account", "issuer_account");
    case RulesResult::issuer_account_invalid:
      return error(400, code, "issuer_account must be an issuer account on the ledger",
                   "issuer_account");
    case RulesResult::currency_invalid:
      return error(400, code, "currency must be three of A-Z (ISO 4217)", "currency");
    case RulesResult::categories_invalid:
      return error(400, code, "categories: 1 to 64, unique names of 1-32 of a-z, 0-9, _ and -",
                   "categories");
    case RulesResult::category_rate_invalid:
      return error(400, code, "rate_bps must be 1 to 10000", "categories");
    case RulesResult::return_window_too_long:
      return error(400, code, "return_window_s is at most 365 days", "return_window_s");
    case RulesResult::expiry_account_not_found:
      return error(404, code, "no such expiry account", "expiry_account");
    case RulesResult::expiry_account_invalid:
      return error(400, code, "expiry_account must be an issuer account on the ledger",
                   "expiry_account");
    case RulesResult::campaigns_invalid:
      return error(400, code,
                   "campaigns: starts_at < ends_at, multiplier_bps 10000 to 1000000, categories "
                   "among the rules' own",
                   "campaigns");
  }
  return error(500, "internal", "unknown rules result");
}

/// 200 with the purchase for ok and exists (its `result` says which); the refusals as errors.
Response purchase_answer(const PurchaseOutcome& o) {
  const std::string code(to_string(o.result));
  switch (o.result) {
    case PurchaseResult::ok:
    case PurchaseResult::exists: {
      if (!o.purchase) return error(500, "internal", "a purchase answered without its state");
      json j = purchase_json(*o.purchase);
      j["result"] = code;
      return ok_json(200, j);
    }
    case PurchaseResult::exists_with_different_fields:
      return error(409, code, "a purchase or refund with this id and another body exists");
    case PurchaseResult::id_must_not_be_zero:
      return error(400, code, "id must not be zero", "id");
    case PurchaseResult::id_reserved:
      return error(400, code, "id must be at most 2^62 - 1", "id");
    case PurchaseResult::amount_must_not_be_zero:
      return error(400, code, "amount must not be zero", "amount");
    case PurchaseResult::member_account_not_found:
      return error(404, code, "no such member account", "member_account");
    case PurchaseResult::member_account_invalid:
      return error(400, code, "the account is not of kind member", "member_account");
    case PurchaseResult::rules_not_found:
      return error(404, code, "the member's ledger has no earning rules");
    case PurchaseResult::currency_mismatch:
      return error(400, code, "the purchase's currency is not the rules' currency", "currency");
    case PurchaseResult::category_not_found:
      return error(400, code, "the rules have no such category", "category");
    case PurchaseResult::purchase_not_found:
      return error(404, code, "no such purchase");
    case PurchaseResult::refund_exceeds_purchase:
      return error(409, code, "the refunds would exceed the purchase's amount", "amount");
    case PurchaseResult::too_many_refunds:
      return error(409, code, "a purchase takes at most 32 refunds");
  }
  return error(500, "internal", "unknown purchase result");
}

}  // namespace

void Api::Impl::rules_get(const Route& r, const Reply& reply) {
  const std::optional<EarningRules> rules = engine.load()->rules(r.id);
  if (!rules) {
    return reply(error(404, "not_found", "ledger " + std::to_string(r.id) + " has no rules"));
  }
  reply(ok_json(200, rules_json(*rules)));
}

void Api::Impl::rules_put(const Route& r, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  EarningRules rules;
  if (!parse_body(req.body, &body, &err) || !map_rules(body, &rules, &err)) {
    return reply(error(err));
  }
  rules.ledger = r.id;
  Engine* e = engine.load();
  e->set_rules(rules, [e, reply, ledger = r.id](const Status& s, RulesResult result) {
    if (!s.is_ok()) return reply(status_error(s));
    if (result != RulesResult::ok) return reply(rules_error(result));
    const std::optional<EarningRules> stored = e->rules(ledger);
    if (!stored) return reply(error(500, "internal", "rules set but not found"));
    reply(ok_json(200, rules_json(*stored)));
  });
}

void Api::Impl::purchases_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  Purchase purchase;
  if (!parse_body(req.body, &body, &err) || !map_purchase(body, &purchase, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  auto run = [e, purchase, reply] {
    e->purchase(purchase, [reply](const Status& s, PurchaseOutcome o) {
      if (!s.is_ok()) return reply(status_error(s));
      reply(purchase_answer(o));
    });
  };
  if (key->role == Role::admin) return run();
  e->account_ledgers({purchase.member_account},
                     [key, reply, run](const Status& s, std::vector<LedgerId> ledgers) {
                       if (!s.is_ok()) return reply(status_error(s));
                       if (ledgers[0] != 0 && !allowed(key, ledgers[0])) {
                         return reply(forbidden_ledger(ledgers[0]));
                       }
                       run();
                     });
}

void Api::Impl::purchase_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  engine.load()->lookup_purchase(
      r.id, [key, id = r.id, reply](const Status& s, std::optional<PurchaseInfo> info) {
        if (!s.is_ok()) return reply(status_error(s));
        // Another issuer's purchase is not named: the same 404 as none.
        if (!info || !allowed(key, info->ledger)) {
          return reply(error(404, "not_found", "no purchase " + std::to_string(id)));
        }
        reply(ok_json(200, purchase_json(*info)));
      });
}

void Api::Impl::purchase_refund(const ApiKey* key, const Route& r, const Request& req,
                                const Reply& reply) {
  json body;
  ApiError err;
  Refund refund;
  if (!parse_body(req.body, &body, &err) || !map_refund(body, &refund, &err)) {
    return reply(error(err));
  }
  refund.purchase_id = r.id;
  Engine* e = engine.load();
  e->lookup_purchase(r.id,
                     [e, key, refund, reply](const Status& s, std::optional<PurchaseInfo> info) {
                       if (!s.is_ok()) return reply(status_error(s));
                       if (!info || !allowed(key, info->ledger)) {
                         return reply(error(404, "purchase_not_found",
                                            "no purchase " + std::to_string(refund.purchase_id)));
                       }
                       e->refund_purchase(refund, [reply](const Status& s2, PurchaseOutcome o) {
                         if (!s2.is_ok()) return reply(status_error(s2));
                         reply(purchase_answer(o));
                       });
                     });
}

// ---------------------------------------------------------------------------------------------
// Check-backs (docs/workflows.md, "Check-backs over HTTP").

namespace {

Response check_back_answer(const CheckBackOutcome& o) {
  const std::string code(to_string(o.result));
  switch (o.result) {
    case CheckBackResult::ok:
    case CheckBackResult::exists: {
      if (!o.check_back) return error(500, "internal", "a check-back answered without its state");
      json j = check_back_json(*o.check_back);
      j["result"] = code;
      return ok_json(200, j);
    }
    case CheckBackResult::exists_with_different_fields:
      return error(409, code, "a check-back with this transfer id and another body exists");
    case CheckBackResult::transfer_invalid:
      return error(400, code,
                   o.transfer_result != TransferResult::ok
                       ? "transfer: " + std::string(to_string(o.transfer_result))
                       : "transfer: must have the flag pending and no timeout_s",
                   "transfer");
    case CheckBackResult::id_reserved:
      return error(400, code, "transfer.id must be at most 2^62 - 1", "transfer.id");
    case CheckBackResult::url_invalid:
      return error(400, code, "url must be http://host[:port][/path]", "url");
    case CheckBackResult::check_after_invalid:
      return error(400, code, "check_after_s must be 1 to 30 days", "check_after_s");
    case CheckBackResult::checks_max_invalid:
      return error(400, code, "checks_max must be at most 100", "checks_max");
    case CheckBackResult::not_found:
      return error(404, code, "no such check-back");
    case CheckBackResult::not_parked:
      return error(409, code, "the check-back is not parked");
    case CheckBackResult::note_too_long:
      return error(400, code, "note is too long", "note");
  }
  return error(500, "internal", "unknown check-back result");
}

}  // namespace

void Api::Impl::check_backs_create(const ApiKey* key, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  CheckedTransfer request;
  if (!parse_body(req.body, &body, &err) || !map_checked_transfer(body, &request, &err)) {
    return reply(error(err));
  }
  Engine* e = engine.load();
  auto run = [e, request, reply] {
    e->create_checked_transfer(request, [reply](const Status& s, CheckBackOutcome o) {
      if (!s.is_ok()) return reply(status_error(s));
      reply(check_back_answer(o));
    });
  };
  if (key->role == Role::admin) return run();
  const Transfer& t = request.transfer;
  if (t.ledger != 0 && !allowed(key, t.ledger)) return reply(forbidden_ledger(t.ledger));
  e->account_ledgers({t.debit_account, t.credit_account},
                     [key, reply, run](const Status& s, std::vector<LedgerId> ledgers) {
                       if (!s.is_ok()) return reply(status_error(s));
                       for (const LedgerId l : ledgers) {
                         if (l != 0 && !allowed(key, l)) return reply(forbidden_ledger(l));
                       }
                       run();
                     });
}

void Api::Impl::check_backs_list(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {"state"}, &q, &err)) return reply(error(err));
  const auto state = q.find("state");
  if (state == q.end() || state->second != "parked") {
    return reply(
        error(400, "invalid_field", "state=parked is required (the operator's list)", "state"));
  }
  engine.load()->parked_check_backs(
      [key, reply](const Status& s, std::vector<CheckBackInfo> parked) {
        if (!s.is_ok()) return reply(status_error(s));
        json list = json::array();
        for (const CheckBackInfo& c : parked) {
          if (allowed(key, c.request.transfer.ledger)) list.push_back(check_back_json(c));
        }
        reply(ok_json(200, {{"check_backs", std::move(list)}}));
      });
}

void Api::Impl::check_back_get(const ApiKey* key, const Route& r, const Reply& reply) {
  std::map<std::string, std::string> q;
  ApiError err;
  if (!parse_query(r.query, {}, &q, &err)) return reply(error(err));
  engine.load()->lookup_check_back(
      r.id, [key, id = r.id, reply](const Status& s, std::optional<CheckBackInfo> info) {
        if (!s.is_ok()) return reply(status_error(s));
        if (!info || !allowed(key, info->request.transfer.ledger)) {
          return reply(error(404, "not_found", "no check-back " + std::to_string(id)));
        }
        reply(ok_json(200, check_back_json(*info)));
      });
}

void Api::Impl::check_back_resolve(const Route& r, const Request& req, const Reply& reply) {
  json body;
  ApiError err;
  std::string note;
  if (!parse_body(req.body, &body, &err) || !map_check_back_note(body, &note, &err)) {
    return reply(error(err));
  }
  engine.load()->resolve_check_back(r.id, note, [reply](const Status& s, CheckBackOutcome o) {
    if (!s.is_ok()) return reply(status_error(s));
    reply(check_back_answer(o));
  });
}

}  // namespace pointex::server
