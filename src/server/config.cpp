#include "server/config.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "domain/webhook.hpp"

namespace pointex::server {

namespace {

using nlohmann::json;

/// Thrown inside this file only, caught by parse_config: the message is the precise error.
struct ConfigError {
  std::string message;
};

[[noreturn]] void fail(const std::string& field, const std::string& what) {
  throw ConfigError{field + ": " + what};
}

/// Rejects fields of `object` that are not in `known`.
void only_known(const json& object, const std::string& where,
                std::initializer_list<const char*> known) {
  if (!object.is_object()) fail(where.empty() ? "(top level)" : where, "expected an object");
  for (const auto& item : object.items()) {
    const bool found =
        std::any_of(known.begin(), known.end(), [&](const char* k) { return item.key() == k; });
    if (!found) {
      fail(where.empty() ? item.key() : where + "." + item.key(),
           "unknown field (see the configuration table in README.md)");
    }
  }
}

std::string path_of(const std::string& where, const char* key) {
  return where.empty() ? std::string(key) : where + "." + key;
}

template <typename T>
void read_uint(const json& object, const std::string& where, const char* key, T* out,
               std::uint64_t min = 0, std::uint64_t max = std::numeric_limits<T>::max()) {
  const auto it = object.find(key);
  if (it == object.end()) return;
  if (!it->is_number_unsigned()) fail(path_of(where, key), "expected an unsigned integer");
  const auto v = it->get<std::uint64_t>();
  if (v < min || v > max) {
    fail(path_of(where, key),
         "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  *out = static_cast<T>(v);
}

void read_string(const json& object, const std::string& where, const char* key, std::string* out) {
  const auto it = object.find(key);
  if (it == object.end()) return;
  if (!it->is_string()) fail(path_of(where, key), "expected a string");
  *out = it->get<std::string>();
}

void read_engine(const json& e, EngineOptions* o) {
  const std::string w = "engine";
  only_known(e, w,
             {"batch_items_max", "inflight_transfers_max", "commit_group_events_max",
              "recovery_progress_events", "history_page_max", "read_wait_ms_max",
              "feed_buffer_events_max", "feed_batch_events_max", "projection_lag_max",
              "account_records_cached_max", "transfer_records_in_memory_max", "live_actors_max",
              "accounts_in_memory_max", "account_idle_s", "read_threads", "async_reads_max",
              "order_timeout_s_default", "order_timeout_s_max", "expiry_sweep_interval_s"});
  read_uint(e, w, "batch_items_max", &o->batch_items_max, 1);
  read_uint(e, w, "inflight_transfers_max", &o->inflight_transfers_max, 1);
  read_uint(e, w, "commit_group_events_max", &o->commit_group_events_max, 1);
  read_uint(e, w, "recovery_progress_events", &o->recovery_progress_events, 1);
  read_uint(e, w, "history_page_max", &o->history_page_max, 1);
  read_uint(e, w, "read_wait_ms_max", &o->read_wait_ms_max);
  read_uint(e, w, "expiry_sweep_interval_s", &o->expiry_sweep_interval_s);
  read_uint(e, w, "feed_buffer_events_max", &o->feed_buffer_events_max, 1);
  read_uint(e, w, "feed_batch_events_max", &o->feed_batch_events_max, 1);
  read_uint(e, w, "projection_lag_max", &o->projection_lag_max);
  read_uint(e, w, "account_records_cached_max", &o->account_records_cached_max, 1);
  read_uint(e, w, "transfer_records_in_memory_max", &o->transfer_records_in_memory_max);
  read_uint(e, w, "live_actors_max", &o->live_actors_max, 1);
  read_uint(e, w, "accounts_in_memory_max", &o->accounts_in_memory_max, 1);
  read_uint(e, w, "account_idle_s", &o->account_idle_s);
  read_uint(e, w, "read_threads", &o->read_threads, 1, 256);
  read_uint(e, w, "async_reads_max", &o->async_reads_max, 1);
  read_uint(e, w, "order_timeout_s_max", &o->order_timeout_s_max, 1);
  read_uint(e, w, "order_timeout_s_default", &o->order_timeout_s_default, 1,
            o->order_timeout_s_max);
}

/// `engine`: the server's two old names for the engine's reader threads and their queue
/// (`worker_threads`, `worker_queue_max`), still read so that older configurations load.
void read_server(const json& s, ServerLimits* o, EngineOptions* engine) {
  const std::string w = "server";
  only_known(s, w,
             {"io_threads", "worker_threads", "connections_max", "body_bytes_max",
              "target_bytes_max", "header_timeout_ms", "body_timeout_ms", "inflight_requests_max",
              "worker_queue_max", "slow_request_ms", "stream_buffer_bytes_max"});
  read_uint(s, w, "io_threads", &o->io_threads, 1, 256);
  read_uint(s, w, "worker_threads", &engine->read_threads, 1, 256);
  read_uint(s, w, "connections_max", &o->connections_max, 1);
  read_uint(s, w, "body_bytes_max", &o->body_bytes_max, 1, 1ULL << 30);
  read_uint(s, w, "target_bytes_max", &o->target_bytes_max, 16, 1U << 16);
  read_uint(s, w, "header_timeout_ms", &o->header_timeout_ms, 1);
  read_uint(s, w, "body_timeout_ms", &o->body_timeout_ms, 1);
  read_uint(s, w, "inflight_requests_max", &o->inflight_requests_max, 1);
  read_uint(s, w, "worker_queue_max", &engine->async_reads_max, 1);
  read_uint(s, w, "slow_request_ms", &o->slow_request_ms);
  read_uint(s, w, "stream_buffer_bytes_max", &o->stream_buffer_bytes_max, 1024);
}

/// `check_back`: the HTTP client's secret, timeout and threads; the engine's checks and backoff.
void read_check_back(const json& h, CheckBackConfig* o, EngineOptions* engine) {
  const std::string w = "check_back";
  only_known(
      h, w,
      {"secret", "timeout_ms", "threads", "checks_default", "backoff_base_ms", "backoff_max_ms"});
  read_string(h, w, "secret", &o->secret);
  if (h.contains("secret") && o->secret.size() < 16) {
    fail(w + ".secret", "must be at least 16 characters");
  }
  read_uint(h, w, "timeout_ms", &o->timeout_ms, 1, 600'000);
  read_uint(h, w, "threads", &o->threads, 1, 64);
  read_uint(h, w, "checks_default", &engine->check_back_checks_default, 1, check_back_checks_max);
  read_uint(h, w, "backoff_base_ms", &engine->check_back_backoff_base_ms, 1);
  read_uint(h, w, "backoff_max_ms", &engine->check_back_backoff_max_ms, 1);
  if (engine->check_back_backoff_max_ms < engine->check_back_backoff_base_ms) {
    fail("check_back.backoff_max_ms", "must be at least backoff_base_ms");
  }
}

/// `webhooks`: delivery, and the engine's bounds on subscriptions.
void read_webhooks(const json& h, WebhookDelivery* o, EngineOptions* engine) {
  const std::string w = "webhooks";
  only_known(
      h, w,
      {"threads", "attempts_max", "backoff_base_ms", "backoff_max_ms", "timeout_ms",
       "events_per_read", "scan_events_max", "flush_interval_ms", "flush_events_max",
       "poll_interval_ms", "redeliveries_queued_max", "subscriptions_max", "dead_letters_max"});
  read_uint(h, w, "threads", &o->threads, 1, 64);
  read_uint(h, w, "attempts_max", &o->attempts_max, 1, 1000);
  read_uint(h, w, "backoff_base_ms", &o->backoff_base_ms, 1);
  read_uint(h, w, "backoff_max_ms", &o->backoff_max_ms, 1);
  if (o->backoff_max_ms < o->backoff_base_ms) {
    fail("webhooks.backoff_max_ms", "must be at least backoff_base_ms");
  }
  read_uint(h, w, "timeout_ms", &o->timeout_ms, 1);
  read_uint(h, w, "events_per_read", &o->events_per_read, 1, engine->history_page_max);
  read_uint(h, w, "scan_events_max", &o->scan_events_max, 1);
  read_uint(h, w, "flush_interval_ms", &o->flush_interval_ms, 1);
  read_uint(h, w, "flush_events_max", &o->flush_events_max, 1);
  read_uint(h, w, "poll_interval_ms", &o->poll_interval_ms, 1, 60'000);
  read_uint(h, w, "redeliveries_queued_max", &o->redeliveries_queued_max, 1);
  read_uint(h, w, "subscriptions_max", &engine->webhooks_max, 1);
  read_uint(h, w, "dead_letters_max", &engine->webhook_dead_letters_max, 1);
}

ApiKey read_key(const json& k, const std::string& w) {
  only_known(k, w, {"key", "role", "ledgers"});
  ApiKey key;
  if (!k.contains("key")) fail(w + ".key", "required");
  read_string(k, w, "key", &key.key);
  if (key.key.size() < 16) fail(w + ".key", "must be at least 16 characters");
  if (key.key.find_first_of(" \t\r\n") != std::string::npos) {
    fail(w + ".key", "must not contain white space");
  }
  std::string role;
  if (!k.contains("role")) fail(w + ".role", "required (admin or issuer)");
  read_string(k, w, "role", &role);
  if (role == "admin") {
    key.role = Role::admin;
  } else if (role == "issuer") {
    key.role = Role::issuer;
  } else {
    fail(w + ".role", "must be admin or issuer");
  }
  if (const auto it = k.find("ledgers"); it != k.end()) {
    if (!it->is_array()) fail(w + ".ledgers", "expected an array of ledger ids");
    for (const json& id : *it) {
      if (!id.is_number_unsigned() || id.get<std::uint64_t>() == 0) {
        fail(w + ".ledgers", "expected ledger ids (unsigned integers, not 0)");
      }
      key.ledgers.push_back(id.get<std::uint64_t>());
    }
  }
  std::sort(key.ledgers.begin(), key.ledgers.end());
  key.ledgers.erase(std::unique(key.ledgers.begin(), key.ledgers.end()), key.ledgers.end());
  if (key.role == Role::issuer && key.ledgers.empty()) {
    fail(w + ".ledgers", "an issuer key needs at least one ledger");
  }
  if (key.role == Role::admin && !key.ledgers.empty()) {
    fail(w + ".ledgers", "an admin key is not bound to ledgers (remove the field)");
  }
  return key;
}

void read_keys(const json& keys, Config* c) {
  if (!keys.is_array()) fail("api_keys", "expected an array");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    ApiKey key = read_key(keys[i], "api_keys[" + std::to_string(i) + "]");
    if (!seen.insert(key.key).second) {
      fail("api_keys[" + std::to_string(i) + "].key", "duplicate key");
    }
    c->api_keys.push_back(std::move(key));
  }
}

/// The fields of one type only: an error names the field and the type it belongs to.
void type_only(const json& p, const std::string& w, const char* type,
               std::initializer_list<const char*> fields) {
  for (const char* f : fields) {
    if (p.contains(f)) fail(w + "." + f, std::string("only for type ") + type);
  }
}

void read_http_url(const json& p, const std::string& w, const char* key, std::string* out) {
  read_string(p, w, key, out);
  std::string host;
  std::uint16_t port = 0;
  std::string target;
  if (!domain::parse_http_url(*out, &host, &port, &target)) {
    fail(w + "." + key, "expected http://host[:port][/path]");
  }
}

PaymentProviderConfig read_provider(const json& p, const std::string& w) {
  only_known(p, w,
             {"name", "type", "secret", "url", "callback_url", "timeout_ms", "attempts_max",
              "threads", "latency_ms", "failure_rate", "seed"});
  PaymentProviderConfig out;
  if (!p.contains("name")) fail(w + ".name", "required");
  read_string(p, w, "name", &out.name);
  if (!valid_payment_provider_name(out.name)) fail(w + ".name", "1-64 of a-z, 0-9, _ and -");
  std::string type;
  if (!p.contains("type")) fail(w + ".type", "required (http or simulated)");
  read_string(p, w, "type", &type);
  if (type == "http") {
    out.type = PaymentProviderConfig::Type::http;
    type_only(p, w, "simulated", {"latency_ms", "failure_rate", "seed"});
    if (!p.contains("secret")) fail(w + ".secret", "required");
    if (!p.contains("url")) fail(w + ".url", "required (where payments are created)");
    read_http_url(p, w, "url", &out.url);
    if (p.contains("callback_url")) read_http_url(p, w, "callback_url", &out.callback_url);
    read_uint(p, w, "timeout_ms", &out.timeout_ms, 1, 600'000);
    read_uint(p, w, "attempts_max", &out.attempts_max, 1, 100);
    read_uint(p, w, "threads", &out.threads, 1, 64);
  } else if (type == "simulated") {
    out.type = PaymentProviderConfig::Type::simulated;
    type_only(p, w, "http", {"url", "callback_url", "timeout_ms", "attempts_max", "threads"});
    read_uint(p, w, "latency_ms", &out.latency_ms, 0, 3'600'000);
    if (const auto it = p.find("failure_rate"); it != p.end()) {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1) {
        fail(w + ".failure_rate", "expected a number from 0 to 1");
      }
      out.failure_rate = it->get<double>();
    }
    read_uint(p, w, "seed", &out.seed);
  } else {
    fail(w + ".type", "must be http or simulated");
  }
  read_string(p, w, "secret", &out.secret);
  if (p.contains("secret") && out.secret.size() < 16) {
    fail(w + ".secret", "must be at least 16 characters");
  }
  return out;
}

void read_providers(const json& providers, Config* c) {
  if (!providers.is_array()) fail("payment_providers", "expected an array");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < providers.size(); ++i) {
    const std::string w = "payment_providers[" + std::to_string(i) + "]";
    PaymentProviderConfig p = read_provider(providers[i], w);
    if (!seen.insert(p.name).second) fail(w + ".name", "duplicate provider");
    c->payment_providers.push_back(std::move(p));
  }
}

void read_top(const json& j, Config* c) {
  only_known(j, "",
             {"listen", "data_dir", "durability", "threads", "log_level", "engine", "server",
              "api_keys", "payment_providers", "webhooks", "check_back"});
  read_string(j, "", "listen", &c->listen);
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(c->listen, &host, &port)) fail("listen", "expected host:port");
  read_string(j, "", "data_dir", &c->engine.data_dir);
  if (c->engine.data_dir.empty()) fail("data_dir", "must not be empty");
  if (j.contains("durability")) {
    std::string d;
    read_string(j, "", "durability", &d);
    if (d == "sync") {
      c->engine.durability = Durability::sync;
    } else if (d == "async") {
      c->engine.durability = Durability::async;
    } else {
      fail("durability", "must be sync or async");
    }
  }
  read_uint(j, "", "threads", &c->engine.threads, 0, 1024);
  read_string(j, "", "log_level", &c->log_level);
  static const std::set<std::string> levels = {"trace", "debug",    "info", "warn",
                                               "error", "critical", "off"};
  if (levels.count(c->log_level) == 0) {
    fail("log_level", "must be trace, debug, info, warn, error, critical or off");
  }
  if (const auto it = j.find("engine"); it != j.end()) read_engine(*it, &c->engine);
  if (const auto it = j.find("server"); it != j.end()) read_server(*it, &c->server, &c->engine);
  if (const auto it = j.find("api_keys"); it != j.end()) read_keys(*it, c);
  if (const auto it = j.find("payment_providers"); it != j.end()) read_providers(*it, c);
  if (const auto it = j.find("check_back"); it != j.end()) {
    read_check_back(*it, &c->check_back, &c->engine);
  }
  if (const auto it = j.find("webhooks"); it != j.end())
    read_webhooks(*it, &c->webhooks, &c->engine);
}

}  // namespace

bool split_host_port(const std::string& listen, std::string* host, std::uint16_t* port) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) return false;
  std::string h = listen.substr(0, colon);
  const std::string p = listen.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  if (h.front() == '[') {
    if (h.back() != ']' || h.size() < 3) return false;
    h = h.substr(1, h.size() - 2);
  }
  *host = h;
  *port = static_cast<std::uint16_t>(v);
  return true;
}

bool parse_config(const std::string& text, Config* config, std::string* error) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
  if (j.is_discarded()) {
    *error = "not valid JSON";
    return false;
  }
  try {
    read_top(j, config);
  } catch (const ConfigError& e) {
    *error = e.message;
    return false;
  }
  return true;
}

bool load_config(const std::string& path, Config* config, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot read the file";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  if (!parse_config(text.str(), config, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

}  // namespace pointex::server
